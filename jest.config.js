/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Tests compile to commonjs/node10: Prisma 7's runtime uses import(), which node16 output breaks under jest.
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: { module: 'commonjs', moduleResolution: 'node10', isolatedModules: true }, diagnostics: false }],
    // ESM-only dependency (webhook delivery's SSRF filter): jest's CommonJS runtime cannot require it untransformed.
    'request-filtering-agent/.+\\.js$': ['ts-jest', { tsconfig: { module: 'commonjs', moduleResolution: 'node10', allowJs: true, isolatedModules: true }, diagnostics: false }],
  },
  transformIgnorePatterns: ['/node_modules/(?!request-filtering-agent/)'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
  testTimeout: 30000,
  // After the last file (and the global teardown) some client handle can stay open and keep jest alive,
  // which CI's timeout would turn into a failure. Seen with --detectOpenHandles (2026-12-02): an app
  // ioredis client never quit, reconnecting forever to the stopped run redis-server (its errors surface
  // through the BullMQ split Queue attached to it). One source fixed: a harness whose close() failed
  // early (e.g. a hook timeout) skipped redis.quit(); others may remain, so this stays until a full
  // run exits without it.
  forceExit: true,
};
