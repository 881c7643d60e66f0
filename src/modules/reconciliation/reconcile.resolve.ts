/**
 * Resolving a bill mismatch with a note (a console action). Shared protocol of console actions: the
 * confirmed form carries a random `actionKey`; the change and its console_audit row (action, target,
 * action_key UNIQUE, who) commit in one transaction, so the same form posted twice acts once.
 */
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { PrismaClient } from '../../lib/prisma';
import { actionKeySchema, consoleNote } from '../console/console.actions';
import { mismatchSourcesOf } from './reconcile.states';

export const RESOLVE_ACTION = 'bill_mismatch.resolve';
const NOTE_MAX = 500;

export type ResolveOutcome = 'resolved' | 'repeated';

/** A repeat (same actionKey) is answered 'repeated' and changes nothing; `merchantId` scopes a merchant user. */
export async function resolveBillMismatch(
  prisma: PrismaClient,
  input: { mismatchId: string; userId: string; merchantId: string | null; actionKey: unknown; note: unknown; now: Date },
): Promise<ResolveOutcome> {
  const key = actionKeySchema.safeParse(input.actionKey);
  if (!key.success) throw new AppError('VALIDATION_FAILED', '表单无效，请重新打开 · The form is invalid: open it again', { field: 'actionKey' });
  const actionKey = key.data;
  const note = consoleNote(input.note, true);
  if (note.length > NOTE_MAX) throw new AppError('VALIDATION_FAILED', `说明最多 ${NOTE_MAX} 字 · The note is longer than ${NOTE_MAX} characters`, { field: 'note' });

  const m = await prisma.billMismatch.findUnique({ where: { id: input.mismatchId }, select: { id: true, merchantId: true, status: true } });
  if (!m || (input.merchantId !== null && m.merchantId !== input.merchantId)) throw new AppError('NOT_FOUND', '没有这条对账差异 · No such mismatch');
  if (await prisma.consoleAudit.findUnique({ where: { actionKey } })) return 'repeated';
  try {
    return await prisma.$transaction(async (db) => {
      const moved = await db.billMismatch.updateMany({ where: { id: m.id, status: { in: mismatchSourcesOf('resolved') } }, data: { status: 'resolved', resolvedAt: input.now, resolvedBy: input.userId, note } });
      if (moved.count === 0) throw new AppError('CONFLICT', '这条差异已处理 · This mismatch is already resolved');
      await db.consoleAudit.create({ data: { id: newId('aud'), userId: input.userId, action: RESOLVE_ACTION, target: m.id, actionKey, note, outcome: 'resolved', createdAt: input.now } });
      return 'resolved' as const;
    });
  } catch (err) {
    // The same form posted twice at once: the other request committed with this actionKey.
    if ((err as { code?: string }).code === 'P2002') return 'repeated';
    if (err instanceof AppError && err.code === 'CONFLICT' && (await prisma.consoleAudit.findUnique({ where: { actionKey } }))) return 'repeated';
    throw err;
  }
}
