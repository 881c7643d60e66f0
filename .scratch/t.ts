import { z } from 'zod';
import { maxUtf8Bytes } from '../src/lib/utf8';
const s = z.object({ d: maxUtf8Bytes(z.string().trim().min(1).max(127), 127) }).strict();
console.log(JSON.stringify(s.safeParse({ d: '中'.repeat(43) }).error?.issues));
console.log(s.safeParse({ d: '中'.repeat(42) }).success);
