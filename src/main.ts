import { ConfigError, loadConfig } from './config/config';
import { startGateway } from './gateway';

/** Production entry point: configuration comes from the environment only. */
async function main(): Promise<void> {
  const gw = await startGateway(loadConfig(process.env));
  const shutdown = async (signal: string) => {
    gw.deps.logger.info({ signal }, 'shutting down');
    await gw.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\nSee .env.example for every variable.\n`);
    process.exit(78); // EX_CONFIG
  }
  process.stderr.write(`gateway failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
