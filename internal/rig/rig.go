// Package rig is the test rig every black-box check of the collector stands
// on: the harness's experiments (bench/...), the scenarios and the binary's
// own tests. It holds, once each:
//
//   - the binary: Build compiles the collector as released (CGO_ENABLED=0),
//     Binary builds it once per test process;
//   - the process: Start and Collector run it in its own process group and
//     wait until it serves; Process stops, kills, reads /stats and /healthz,
//     peak RSS and CPU time;
//   - the upstream: Receiver is a recording webhook endpoint on loopback that
//     fails on command (error statuses, held or slow answers, refused
//     connections, one-shot traps); Deliveries keeps what it took, byte for
//     byte, by (collector_id, id);
//   - the producers: Load posts tagged requests from worker goroutines and
//     writes every answer into a Ledger;
//   - the ledger: Ledger.Check holds the collector to its promises against
//     the database it left and what the receiver took: every acknowledged
//     event stored and delivered byte for byte, every request whole or not
//     at all, ids never reused.
//
// It depends on the collector's wire types only (never on bench/, never on
// the store's internals), so the collector's own tests can use it.
package rig
