import type { AppModule } from '../../app.types';
import { consoleRouter } from './console.routes';

/** The operators' and merchants' console (/console). */
export const consoleModule: AppModule = {
  pageRoutes: (deps) => consoleRouter(deps),
};
