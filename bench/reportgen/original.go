package reportgen

// The original's published SQLRite measurements (seed/go-collector-README.md,
// "Measured throughput"), kept verbatim as a reference: its machine, its
// engine, its numbers.

const originalEnv = "Apple M1 Pro (10 cores), macOS 14 (Darwin 23.5), Go 1.24, sqlrite-engine 0.10.2 (release `libsqlrite_c`), 16 workers for 8 s per cell"

const originalTables = `| write mode | indexed | events/sec | vs serialized |
| --- | --- | ---: | ---: |
| serialized (single mutex) | no | 156 | 1.00× |
| concurrent (` + "`BEGIN CONCURRENT`" + `) | no | 142 | 0.91× |
| concurrent (` + "`BEGIN CONCURRENT`" + `) | yes | 136 | 0.87× |

Insert latency under a concurrent checkpoint writer (16 workers):

| write mode | p50 | p90 | p99 | max |
| --- | ---: | ---: | ---: | ---: |
| serialized | 146 ms | 155 ms | 164 ms | 181 ms |
| concurrent | 184 ms | 265 ms | 333 ms | 431 ms |

Disjoint-row batched writers (8 workers, 20-statement transactions):

| write mode | updates/sec | conflicts |
| --- | ---: | ---: |
| serialized | 2,655 | 0 |
| concurrent | 2,018 | 0 |
`

// Ratios derived from the original's tables, for the side-by-side table.
const (
	origConcurrent        = 142.0 / 156.0 // concurrent / serialized, events/s
	origConcurrentIndexed = 136.0 / 156.0 // concurrent indexed / serialized plain
	origContentionP99     = 333.0 / 164.0 // concurrent / serialized, p99 under contention
	origDisjoint          = 2018.0 / 2655.0
)
