/**
 * The console's action protocol, shared by every console page that changes something (the checkout
 * actions in console.checkout-actions.ts; bill mismatches elsewhere):
 *
 *   GET  <path>   the confirm page: states exactly what will happen; its form carries _csrf (checked by
 *                 the console router on every POST), a fresh random `actionKey` and the fields
 *   POST <path>   runs the action at most once per actionKey and records it in console_audit (who, when,
 *                 what, outcome); 303 to a page that shows the recorded outcome. A refused action (bad
 *                 input, a rule of the service) records nothing and shows the confirm page again with
 *                 the message and the same actionKey.
 *
 * Once-only, two ways (pick per action):
 *   - runInTransaction: the action's writes and its audit row commit together; a repeat loses on the
 *     unique action_key, rolls back and shows the stored outcome.
 *   - runKeyed: the action carries its own idempotency key (a refund's is the actionKey), so doing it
 *     again returns the first result. The audit row is claimed first (outcome null = under way) and
 *     completed after: a crash in between is completed by the next submit of the same form.
 */
import type { NextFunction, Request, Response, Router } from 'express';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import { hasControlChars } from '../../lib/validation';
import { isUniqueViolation, type Prisma, type PrismaClient } from '../../lib/prisma';
import type { Scope } from './console.queries';
import type { ConsoleSessionRef, ConsoleUserRef } from './console.users';

type Tx = Prisma.TransactionClient;

/** 18 random bytes as base64url (24 characters): unguessable, and safe in a URL. */
export const newActionKey = () => randomBytes(18).toString('base64url');
export const actionKeySchema = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/);

/** A person's note on an action, trimmed. Lines are fine; NUL and other control characters are not
 * (PostgreSQL refuses NUL: a 500). */
export function consoleNote(raw: unknown, required: boolean): string {
  const note = typeof raw === 'string' ? raw.trim() : '';
  if (required && !note) throw new AppError('VALIDATION_FAILED', '请填写处理说明 · A note is required', { field: 'note' });
  if (hasControlChars(note.replace(/\r?\n|\t/g, ' '))) throw new AppError('VALIDATION_FAILED', '说明含有控制字符 · The note holds control characters', { field: 'note' });
  return note;
}

export interface ActionCall {
  user: ConsoleUserRef;
  /** Stable name, e.g. `refund`, `split.retry`. */
  action: string;
  /** What it acts on; starts with the checkout id when there is one (the timeline finds it so). */
  target: string;
  actionKey: string;
  note?: string | null;
}

export interface ActionResult {
  outcome: string;
  /** True when this submit found the action already done (double submit, reload, second tab). */
  replayed: boolean;
}

const staleForm = () =>
  new AppError('CONFLICT', '此表单已用于另一操作，请重新打开操作页面 · This form was already used for another action: open the action again');

/** The stored row for this key, checked to be the same action by the same user. */
async function priorOf(prisma: PrismaClient, call: ActionCall) {
  const prior = await prisma.consoleAudit.findUnique({ where: { actionKey: call.actionKey } });
  if (prior && (prior.action !== call.action || prior.target !== call.target || prior.userId !== call.user.id)) throw staleForm();
  return prior;
}

/** The action's writes and its audit row in one transaction (see the file comment). */
export async function runInTransaction(prisma: PrismaClient, call: ActionCall, perform: (db: Tx) => Promise<string>): Promise<ActionResult> {
  const prior = await priorOf(prisma, call);
  if (prior?.outcome != null) return { outcome: prior.outcome, replayed: true };
  try {
    const outcome = await prisma.$transaction(async (db) => {
      const out = await perform(db);
      await db.consoleAudit.create({ data: { id: newId('ca'), userId: call.user.id, action: call.action, target: call.target, actionKey: call.actionKey, note: call.note ?? null, outcome: out } });
      return out;
    });
    return { outcome, replayed: false };
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    // A concurrent submit of the same form committed first: ours rolled back, its outcome is the answer.
    const won = await priorOf(prisma, call);
    if (won?.outcome == null) throw err;
    return { outcome: won.outcome, replayed: true };
  }
}

/** An action idempotent on its own key: claim the audit row, perform, complete the row (see the file comment). */
export async function runKeyed(prisma: PrismaClient, call: ActionCall, perform: () => Promise<string>): Promise<ActionResult> {
  const prior = await priorOf(prisma, call);
  if (prior?.outcome != null) return { outcome: prior.outcome, replayed: true };
  if (!prior) {
    try {
      await prisma.consoleAudit.create({ data: { id: newId('ca'), userId: call.user.id, action: call.action, target: call.target, actionKey: call.actionKey, note: call.note ?? null } });
    } catch (err) {
      // A concurrent submit claimed it: performing again is safe (the action is idempotent on its key).
      if (!isUniqueViolation(err)) throw err;
      await priorOf(prisma, call);
    }
  }
  let outcome: string;
  try {
    outcome = await perform();
  } catch (err) {
    // Refused (nothing was done): free the form so it can be corrected and sent again.
    if (err instanceof AppError) await prisma.consoleAudit.deleteMany({ where: { actionKey: call.actionKey, outcome: null } });
    throw err;
  }
  // First writer wins, so every submit of this form shows the same outcome.
  await prisma.consoleAudit.updateMany({ where: { actionKey: call.actionKey, outcome: null }, data: { outcome } });
  let row = await prisma.consoleAudit.findUnique({ where: { actionKey: call.actionKey } });
  if (!row) {
    // A concurrent submit of this form was refused and freed the claim while ours was being done:
    // what was done is recorded all the same.
    try {
      row = await prisma.consoleAudit.create({ data: { id: newId('ca'), userId: call.user.id, action: call.action, target: call.target, actionKey: call.actionKey, note: call.note ?? null, outcome } });
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      row = await prisma.consoleAudit.findUniqueOrThrow({ where: { actionKey: call.actionKey } });
      if (row.outcome === null) row = await prisma.consoleAudit.update({ where: { actionKey: call.actionKey }, data: { outcome } });
    }
  }
  return { outcome: row.outcome ?? outcome, replayed: prior !== null };
}

// ---- pages ---------------------------------------------------------------------------------------

export interface ActionField {
  name: string;
  /** Chinese · English, like every console label. */
  label: string;
  kind: 'text' | 'textarea' | 'select' | 'amount';
  options?: Array<{ value: string; label: string }>;
  required?: boolean;
  maxLength?: number;
  /**
   * `choose`: decided before the confirm step (the refund amount): asked on an edit form that GETs the
   * confirm page again, then fixed (hidden) on the confirm form, so the statement matches what is sent.
   * `confirm`: filled on the confirm form itself (a note), which does not change what will happen.
   */
  step: 'choose' | 'confirm';
}

export interface ActionPage<S, I> {
  /** The audit name, e.g. `refund`. */
  action: string;
  /** Express path of both the confirm page (GET) and the action (POST). */
  path: string;
  title: string;
  /** The navigation entry shown as current (default `checkouts`). */
  nav?: string;
  /** What the action is about, read in the viewer's scope; throws NOT_FOUND (another merchant's object is not found). */
  load(req: Request, scope: Scope): Promise<S>;
  /** Why it cannot be done now (shown instead of the form), or null. */
  blocked?(subject: S): string | null;
  fields?: ActionField[];
  /** Form values to input; `stage: 'confirm'` = only the `choose` fields are there yet. Throws AppError. */
  parse(values: Record<string, string>, subject: S, stage: 'confirm' | 'submit'): I;
  /** What will happen, as label/value rows (amounts, receivers, numbers). */
  summary(subject: S, input: I): Array<[string, string]>;
  target(subject: S): string;
  /**
   * The state the statement rests on (e.g. the refunds made so far), carried by the confirm form: a
   * submit confirmed against another state is refused and the page shown again with the current one,
   * so two people (or two tabs) confirming from the same picture do not both act on it.
   */
  stamp?(subject: S): string;
  /** Does it once (runKeyed / runInTransaction). */
  run(subject: S, input: I, call: ActionCall): Promise<ActionResult>;
  /** Where the outcome is shown. */
  doneUrl(subject: S, actionKey: string): string;
  /** Back without acting. */
  backUrl(subject: S): string;
}

export interface PageContext {
  prisma: PrismaClient;
  render(res: Response, name: string, locals: Record<string, unknown>): void;
  session(res: Response): ConsoleSessionRef;
  scope(res: Response): Scope;
}

const asStrings = (src: unknown, fields: ActionField[]): Record<string, string> => {
  const o = (src ?? {}) as Record<string, unknown>;
  return Object.fromEntries(fields.map((f) => [f.name, typeof o[f.name] === 'string' ? (o[f.name] as string).slice(0, f.maxLength ?? 500) : '']));
};

/** Mounts one action's confirm page and POST on the console router (CSRF and session are the router's). */
export function mountAction<S, I>(r: Router, ctx: PageContext, page: ActionPage<S, I>): void {
  const fields = page.fields ?? [];
  const show = (req: Request, res: Response, subject: S, o: { actionKey: string; values: Record<string, string>; error?: string | null; status?: number }) => {
    const blocked = page.blocked?.(subject) ?? null;
    let parsed: { input: I } | null = null;
    let error = o.error ?? null;
    let status = o.status;
    // Nothing chosen yet (first visit from the checkout page): just the edit form, no complaint.
    const choose = fields.filter((f) => f.step === 'choose');
    if (!blocked && (choose.length === 0 || choose.some((f) => o.values[f.name]))) {
      try {
        parsed = { input: page.parse(o.values, subject, 'confirm') };
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        error ??= err.message;
        status ??= err.status;
      }
    }
    res.status(blocked ? 409 : (status ?? 200));
    ctx.render(res, 'action', {
      title: page.title,
      nav: page.nav ?? 'checkouts',
      // The subject is in the path: the confirm form and the edit form go back to it.
      formAction: req.path,
      backUrl: page.backUrl(subject),
      actionKey: o.actionKey,
      fields,
      values: o.values,
      blocked,
      error,
      summary: parsed ? page.summary(subject, parsed.input) : null,
      stamp: page.stamp?.(subject) ?? null,
    });
  };

  r.get(page.path, async (req, res) => {
    const subject = await page.load(req, ctx.scope(res));
    show(req, res, subject, { actionKey: newActionKey(), values: asStrings(req.query, fields.filter((f) => f.step === 'choose')) });
  });

  r.post(page.path, async (req: Request, res: Response, next: NextFunction) => {
    const subject = await page.load(req, ctx.scope(res));
    const values = asStrings(req.body, fields);
    const key = actionKeySchema.safeParse(req.body?.actionKey);
    if (!key.success) {
      show(req, res, subject, { actionKey: newActionKey(), values, error: '表单缺少操作编号，请重新确认 · The form has no action key: confirm again', status: 400 });
      return;
    }
    const user = ctx.session(res).user;
    const target = page.target(subject);
    // Done already (double submit, reload, a duplicated tab): the recorded outcome, before any "cannot" check.
    const prior = await ctx.prisma.consoleAudit.findUnique({ where: { actionKey: key.data } });
    const mine = prior !== null && prior.action === page.action && prior.target === target && prior.userId === user.id;
    if (mine && prior.outcome !== null) {
      res.redirect(303, page.doneUrl(subject, key.data));
      return;
    }
    try {
      // Claimed but not completed (a crash mid-way): the action's own key makes completing it safe,
      // even though the subject now looks "done" (e.g. the batch has its retry).
      const blocked = mine ? null : (page.blocked?.(subject) ?? null);
      if (blocked) throw new AppError('CONFLICT', blocked);
      if (!mine && page.stamp && req.body?.stamp !== page.stamp(subject))
        throw new AppError('CONFLICT', '自你确认以来情况已有变化（例如另一笔退款），请核对后重新确认 · This changed since you confirmed (e.g. another refund): check it and confirm again');
      const input = page.parse(values, subject, 'submit');
      const call: ActionCall = { user, action: page.action, target, actionKey: key.data };
      await page.run(subject, input, call);
      res.redirect(303, page.doneUrl(subject, key.data));
    } catch (err) {
      // NOT_FOUND and stale-session errors are pages of their own; the rest is said on the form.
      if (!(err instanceof AppError) || err.code === 'NOT_FOUND' || err.code === 'FORBIDDEN') return next(err);
      show(req, res, subject, { actionKey: key.data, values, error: err.message, status: err.status });
    }
  });
}
