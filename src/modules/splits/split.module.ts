import type { AppModule } from '../../app';

/** Profit sharing (分账). Filled in by the split settlement work (issue 3). */
export const splitsModule: AppModule = {};
