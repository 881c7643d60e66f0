import type { AppModule } from '../../app.types';
import { adminRouter } from './admin.routes';

/** Merchants (issue 10): the admin API under /admin/api (404 unless ADMIN_TOKEN is set). */
export const merchantsModule: AppModule = {
  apiRoutes: (deps) => adminRouter(deps),
};
