/**
 * Console users and their sessions. Passwords are argon2id (OWASP's first choice; the npm `argon2`
 * binding ships prebuilt binaries); sessions live in PostgreSQL so a Redis flush signs nobody out, and
 * only the SHA-256 of the session token is stored, so a database read does not yield usable cookies.
 */
import argon2 from 'argon2';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { AppError } from '../../lib/errors';
import { newId } from '../../lib/ids';
import type { PrismaClient } from '../../lib/prisma';

export type ConsoleRole = 'operator' | 'merchant';

export interface ConsoleUserRef {
  id: string;
  email: string;
  role: ConsoleRole;
  /** Set for merchant users: every query is scoped to it. */
  merchantId: string | null;
}

export const SESSION_TTL_MS = 12 * 3600_000;
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,190}$/;

/** OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): a guess costs the attacker, a sign-in stays fast. */
const ARGON2 = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** A 20-character password from a CSPRNG (about 119 bits), printed once by the CLI. */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url');
}

export async function createConsoleUser(
  prisma: PrismaClient,
  input: { email: string; role: ConsoleRole; merchantId?: string | null; password?: string },
): Promise<{ user: ConsoleUserRef; password: string; generated: boolean }> {
  const email = input.email.trim().toLowerCase();
  if (!EMAIL.test(email)) throw new AppError('VALIDATION_FAILED', `not an email address: ${input.email}`, { field: 'email' });
  if (input.role !== 'operator' && input.role !== 'merchant') throw new AppError('VALIDATION_FAILED', 'role must be operator or merchant', { field: 'role' });
  if (input.role === 'merchant' && !input.merchantId) throw new AppError('VALIDATION_FAILED', 'a merchant user needs --merchant <merchant id>', { field: 'merchant' });
  if (input.role === 'operator' && input.merchantId) throw new AppError('VALIDATION_FAILED', 'an operator sees every merchant: drop --merchant', { field: 'merchant' });
  if (input.merchantId && !(await prisma.merchant.findUnique({ where: { id: input.merchantId }, select: { id: true } })))
    throw new AppError('NOT_FOUND', `no merchant ${input.merchantId}`, { field: 'merchant' });
  if (input.password !== undefined && input.password.length < 12) throw new AppError('VALIDATION_FAILED', 'a password needs at least 12 characters', { field: 'password' });
  const password = input.password ?? generatePassword();
  const passwordHash = await argon2.hash(password, ARGON2);
  const existing = await prisma.consoleUser.findUnique({ where: { email }, select: { id: true } });
  if (existing) throw new AppError('CONFLICT', `a console user ${email} exists already`, { field: 'email' });
  const user = await prisma.consoleUser.create({
    data: { id: newId('cu'), email, passwordHash, role: input.role, merchantId: input.merchantId ?? null },
  });
  return { user: { id: user.id, email, role: user.role, merchantId: user.merchantId }, password, generated: input.password === undefined };
}

// Verifying against a fixed hash when the user is unknown keeps the answer time the same either way.
let dummyHash: Promise<string> | undefined;

/** The user for these credentials, or null (unknown email, wrong password, disabled). */
export async function checkCredentials(prisma: PrismaClient, email: string, password: string): Promise<ConsoleUserRef | null> {
  const user = await prisma.consoleUser.findUnique({ where: { email: email.trim().toLowerCase() } });
  if (!user || user.disabledAt) {
    dummyHash ??= argon2.hash(generatePassword(), ARGON2);
    await argon2.verify(await dummyHash, password).catch(() => false);
    return null;
  }
  const ok = await argon2.verify(user.passwordHash, password).catch(() => false);
  return ok ? { id: user.id, email: user.email, role: user.role, merchantId: user.merchantId } : null;
}

export interface ConsoleSessionRef {
  user: ConsoleUserRef;
  csrfToken: string;
  sessionId: string;
}

export async function createSession(prisma: PrismaClient, userId: string, now: Date): Promise<{ token: string }> {
  const token = randomBytes(32).toString('base64url');
  await prisma.consoleSession.create({
    data: { id: newId('cs'), tokenHash: sha256(token), userId, csrfToken: randomBytes(24).toString('base64url'), expiresAt: new Date(now.getTime() + SESSION_TTL_MS) },
  });
  return { token };
}

export async function loadSession(prisma: PrismaClient, token: string | undefined, now: Date): Promise<ConsoleSessionRef | null> {
  if (!token || token.length > 100) return null;
  const s = await prisma.consoleSession.findUnique({ where: { tokenHash: sha256(token) }, include: { user: true } });
  if (!s || s.expiresAt <= now || s.user.disabledAt) return null;
  return { sessionId: s.id, csrfToken: s.csrfToken, user: { id: s.user.id, email: s.user.email, role: s.user.role, merchantId: s.user.merchantId } };
}

export async function destroySession(prisma: PrismaClient, sessionId: string): Promise<void> {
  await prisma.consoleSession.deleteMany({ where: { id: sessionId } });
}

export function csrfMatches(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
