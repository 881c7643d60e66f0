import { parseRedisUrl } from '../../src/lib/redis';
import { queueKeyPrefix } from '../../src/modules/splits/split.queue';

describe('Redis URL', () => {
  it('When REDIS_URL names one server, then it is used as is', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379/2')).toEqual({ cluster: false, url: 'redis://127.0.0.1:6379/2' });
  });

  it('When REDIS_URL is redis+cluster://, then every node, the credentials and TLS are read', () => {
    expect(parseRedisUrl('rediss+cluster://gw:p%40ss@10.0.0.1:7000,10.0.0.2:7001,redis-3')).toEqual({
      cluster: true, username: 'gw', password: 'p@ss', tls: true,
      nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 7001 }, { host: 'redis-3', port: 6379 }],
    });
    expect(parseRedisUrl('redis+cluster://127.0.0.1:7000')).toEqual({ cluster: true, nodes: [{ host: '127.0.0.1', port: 7000 }], tls: false, username: undefined, password: undefined });
  });

  it('When the BullMQ prefix has no hash tag, then it becomes one, so a queue lives in one cluster slot', () => {
    expect(queueKeyPrefix('gw')).toBe('{gw}');
    expect(queueKeyPrefix('{gw}')).toBe('{gw}');
    expect(queueKeyPrefix('env-{gw}')).toBe('env-{gw}');
  });
});
