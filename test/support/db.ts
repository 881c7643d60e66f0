import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { createPrisma, disconnectPrisma, type PrismaClient } from '../../src/lib/prisma';

export interface TestDatabase {
  url: string;
  prisma: PrismaClient;
  drop(): Promise<void>;
}

function templateUrl(): URL {
  const url = process.env.TEST_DATABASE_URL_TEMPLATE;
  if (!url) throw new Error('TEST_DATABASE_URL_TEMPLATE is unset: run the tests through jest (test/setup/global-setup.ts)');
  return new URL(url);
}

async function onServer(template: URL, sql: string): Promise<void> {
  const admin = new URL(template);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A fresh, migrated database cloned from the run's template (a file copy: milliseconds). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const template = templateUrl();
  const templateName = decodeURIComponent(template.pathname.slice(1));
  const name = `test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await onServer(template, `CREATE DATABASE "${name}" TEMPLATE "${templateName}" STRATEGY FILE_COPY`);
  const url = new URL(template);
  url.pathname = `/${name}`;
  const prisma = createPrisma(url.toString());
  return {
    url: url.toString(),
    prisma,
    drop: async () => {
      await disconnectPrisma(prisma);
      await onServer(template, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}
