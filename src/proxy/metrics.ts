// Counters and latency summaries in Prometheus text format, cheap enough for the hot path.

const WINDOW = 2048;

export class ProxyMetrics {
  private readonly requests = new Map<string, number>();
  private readonly cache = new Map<string, number>();
  mintFailures = 0;
  inflight = 0;
  private readonly latencies = new Float64Array(WINDOW);
  private latencyCount = 0;
  private latencySum = 0;

  record(status: number, cacheResult: string, upstreamMs: number | null): void {
    const key = `${Math.floor(status / 100)}xx`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    this.cache.set(cacheResult, (this.cache.get(cacheResult) ?? 0) + 1);
    if (upstreamMs !== null) {
      this.latencies[this.latencyCount % WINDOW] = upstreamMs;
      this.latencyCount++;
      this.latencySum += upstreamMs;
    }
  }

  quantiles(): Record<string, number> {
    const n = Math.min(this.latencyCount, WINDOW);
    if (n === 0) return {};
    const sorted = Array.from(this.latencies.subarray(0, n)).sort((a, b) => a - b);
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))]!;
    return { '0.5': at(0.5), '0.9': at(0.9), '0.99': at(0.99) };
  }

  prometheus(): string {
    const lines = ['# HELP idcall_proxy_requests_total Requests answered, by status class.', '# TYPE idcall_proxy_requests_total counter'];
    for (const [k, v] of this.requests) lines.push(`idcall_proxy_requests_total{status="${k}"} ${v}`);
    lines.push('# HELP idcall_proxy_token_cache_total Token lookups, by result.', '# TYPE idcall_proxy_token_cache_total counter');
    for (const [k, v] of this.cache) lines.push(`idcall_proxy_token_cache_total{result="${k}"} ${v}`);
    lines.push('# HELP idcall_proxy_mint_failures_total Requests answered 502 because no token could be minted.', '# TYPE idcall_proxy_mint_failures_total counter', `idcall_proxy_mint_failures_total ${this.mintFailures}`);
    lines.push('# HELP idcall_proxy_inflight_requests Requests in progress.', '# TYPE idcall_proxy_inflight_requests gauge', `idcall_proxy_inflight_requests ${this.inflight}`);
    lines.push('# HELP idcall_proxy_upstream_latency_seconds Upstream time to response headers (last 2048 requests for quantiles).', '# TYPE idcall_proxy_upstream_latency_seconds summary');
    for (const [q, v] of Object.entries(this.quantiles())) lines.push(`idcall_proxy_upstream_latency_seconds{quantile="${q}"} ${(v / 1000).toFixed(6)}`);
    lines.push(`idcall_proxy_upstream_latency_seconds_sum ${(this.latencySum / 1000).toFixed(6)}`, `idcall_proxy_upstream_latency_seconds_count ${this.latencyCount}`);
    return lines.join('\n') + '\n';
  }
}
