import { defineConfig } from 'prisma/config';

// Tooling only: the app itself reads DATABASE_URL through src/config. Left optional so that
// `prisma generate` (postinstall, CI) works without a database.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL },
});
