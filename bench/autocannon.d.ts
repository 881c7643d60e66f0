// Minimal typing of the autocannon API the benches use (the package ships no types).
declare module 'autocannon' {
  namespace autocannon {
    interface Request { method?: string; path?: string; headers?: Record<string, string>; body?: string; setupRequest?: (req: Request) => Request }
    interface Options { url: string; duration?: number; amount?: number; connections?: number; method?: string; headers?: Record<string, string>; body?: string; requests?: Request[] }
    interface Histogram { average: number; p50: number; p99: number; max: number }
    interface Result { requests: Histogram; latency: Histogram; non2xx: number; errors: number; timeouts: number }
  }
  function autocannon(opts: autocannon.Options): Promise<autocannon.Result>;
  export = autocannon;
}
