// Minimal typing of the autocannon API the benches use (the package ships no types).
declare module 'autocannon' {
  namespace autocannon {
    type Context = Record<string, unknown>;
    interface Request {
      method?: string; path?: string; headers?: Record<string, string>; body?: string;
      setupRequest?: (req: Request, context?: Context) => Request;
      onResponse?: (status: number, body: string, context: Context) => void;
    }
    interface Options {
      url: string; duration?: number; amount?: number; connections?: number; method?: string; headers?: Record<string, string>; body?: string;
      requests?: Request[]; overallRate?: number;
    }
    interface Histogram { average: number; p50: number; p99: number; max: number; total: number }
    interface Result { requests: Histogram; latency: Histogram; non2xx: number; errors: number; timeouts: number; duration: number; '2xx': number; '3xx': number }
    interface Instance extends PromiseLike<Result> { stop(): void }
  }
  function autocannon(opts: autocannon.Options): autocannon.Instance;
  export = autocannon;
}
