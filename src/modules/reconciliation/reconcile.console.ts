/**
 * Console pages of daily bill reconciliation: /console/reconciliation (runs by day and account, with
 * counts), a run's mismatches, one mismatch, and its resolve action (confirm form → POST with _csrf,
 * actionKey, note). Mounted after the console module: its middleware has already loaded the session
 * (res.locals.console) and checked the CSRF token of every POST under /console.
 */
import express, { type Response, type Router } from 'express';
import type { AppDeps } from '../../app.types';
import { AppError } from '../../lib/errors';
import { newActionKey } from '../console/console.actions';
import { consoleErrorPage, consoleView, scopeOf } from '../console/console.routes';
import type { ConsoleSessionRef } from '../console/console.users';
import { listRuns, mismatchById, runWithMismatches } from './reconcile.queries';
import { resolveBillMismatch } from './reconcile.resolve';

const DAY = /^\d{4}-\d{2}-\d{2}$/;

export function reconciliationConsoleRouter(deps: AppDeps): Router {
  const r = express.Router();
  const session = (res: Response) => res.locals.console as ConsoleSessionRef | undefined;
  const page = consoleView(deps);
  const view = (res: Response, name: string, locals: Record<string, unknown>) => page(res, name, { nav: 'reconciliation', ...locals });

  r.use('/console/reconciliation', (_req, res, next) => {
    // Without the console module in front there is no session: never serve these pages unauthenticated.
    if (!session(res)) return res.redirect(303, '/console/login');
    next();
  });

  r.get('/console/reconciliation', async (req, res) => {
    const date = typeof req.query.date === 'string' && DAY.test(req.query.date) ? req.query.date : '';
    const account = typeof req.query.account === 'string' ? req.query.account.slice(0, 64) : '';
    const runs = await listRuns(deps.prisma, scopeOf(session(res)!), { billDate: date || undefined, accountKey: account || undefined });
    view(res, 'reconciliation', { title: '对账 Reconciliation', runs, date, account });
  });

  r.get('/console/reconciliation/runs/:id', async (req, res) => {
    const found = await runWithMismatches(deps.prisma, scopeOf(session(res)!), req.params.id!);
    if (!found) throw new AppError('NOT_FOUND', '没有这次对账 · No such reconciliation run');
    view(res, 'reconciliation-run', { title: `对账 ${found.run.billDate} ${found.run.accountKey}`, run: found.run, mismatches: found.mismatches });
  });

  r.get('/console/reconciliation/mismatches/:id', async (req, res) => {
    const m = await mismatchById(deps.prisma, scopeOf(session(res)!), req.params.id!);
    if (!m) throw new AppError('NOT_FOUND', '没有这条对账差异 · No such mismatch');
    view(res, 'reconciliation-mismatch', { title: `对账差异 ${m.kind}`, m, confirm: req.query.confirm === '1' && m.status === 'open', actionKey: newActionKey(), done: req.query.done === '1' });
  });

  r.post('/console/reconciliation/mismatches/:id/resolve', async (req, res) => {
    const s = session(res)!;
    const outcome = await resolveBillMismatch(deps.prisma, {
      mismatchId: req.params.id!,
      userId: s.user.id,
      merchantId: scopeOf(s).merchantId,
      actionKey: req.body?.actionKey,
      note: req.body?.note,
      now: deps.now(),
    });
    deps.logger.info({ userId: s.user.id, mismatchId: req.params.id, outcome }, 'console: bill mismatch resolve');
    res.redirect(303, `/console/reconciliation/mismatches/${encodeURIComponent(req.params.id!)}?done=1`);
  });

  // Errors of these pages are pages (the console module's handler only sees its own routes).
  r.use('/console/reconciliation', consoleErrorPage(deps, 'console reconciliation page', { nav: 'reconciliation' }));
  return r;
}
