// Package ratelimit is the pure core of Portcullis's local rate limiting:
// exact per-key limits shared by every worker of one Envoy, kept in
// proxy-wasm shared data and updated with compare-and-swap. It reaches the
// host only through shared.Store, and is told the time on each decision, so
// it tests natively; filter/host backs the Store with shared data.
//
// # Algorithm: GCRA
//
// Each limit {Requests N, Window T} is a generic cell rate algorithm (GCRA,
// the virtual-scheduling form) with emission interval I = ⌈T/N⌉ ns and
// burst N. Its whole state is one int64, the theoretical arrival time TAT;
// the debt at time t is max(TAT − t, 0). A request at t is admitted iff
//
//	max(TAT, t) − t ≤ τ, with τ = (N−1)·I
//
// and admitting it sets TAT = max(TAT, t) + I. A denial changes nothing.
//
// Guarantees, for one key and one limit:
//
//   - Cold burst: a key with no debt admits exactly N requests at one
//     instant (the k-th needs (k−1)·I ≤ τ, i.e. k ≤ N), then none.
//   - Steady rate: one request per I. I is rounded up, so the long-run rate
//     never exceeds N per T (it is at most 1 ns per request slower).
//   - Any span: a half-open span of length d never holds more than
//     N + ⌈d/I⌉ − 1 admitted requests. For d = T that is at most 2N − 1,
//     spread over the window (N at its start, then one every I); it is
//     reached when T is a multiple of N. A fixed window, which the tutorial
//     used, admits 2N within an instant around a window edge; GCRA never
//     admits more than N at one instant.
//
// Proof of the span bound. Let t_1 ≤ t_2 ≤ … be the decision times of the
// admitted requests of one entry and TAT_k the TAT after the k-th. Then
// TAT_k = max(TAT_{k−1}, t_k) + I gives TAT_k ≥ TAT_{k−1} + I and
// TAT_k ≥ t_k + I, so for a < b: TAT_{b−1} ≥ TAT_a + (b−1−a)·I ≥
// t_a + (b−a)·I. Admitting b required TAT_{b−1} − t_b ≤ (N−1)·I, hence
// t_b − t_a ≥ (b−a+1 − N)·I: m = b−a+1 admissions span at least (m−N)·I.
// If they lie in [s, s+d), then (m−N)·I < d, so m ≤ N + ⌈d/I⌉ − 1; and
// ⌈T/I⌉ ≤ N because I ≥ T/N. Denied requests do not change TAT, so no
// request pattern, however adversarial, can do better (window_test.go
// checks the bound, and that it is reached, by simulation). The bound
// holds per entry, so it also holds for a key that shares an entry (below),
// whose admissions are a subset of the entry's.
//
// # Cost
//
// A request of cost c (Decide's cost, a rule's "cost") counts as c requests:
// it is admitted iff every limit has max(TAT, t) − t ≤ (N−c)·I, and then
// TAT = max(TAT, t) + c·I, in the same single CAS, so either all c units
// are charged or none. Cost 1 is the rule above. With cost c:
//
//   - Cold burst: a key with no debt admits exactly ⌊N/c⌋ requests at one
//     instant (the k-th needs (k−1)·c·I ≤ (N−c)·I, i.e. k·c ≤ N).
//   - Any span of length d holds at most N + ⌈d/I⌉ − 1 units of cost (the
//     proof above, with each admission advancing TAT by c·I ≥ I and
//     tolerance (N−c)·I ≤ (N−1)·I), so never more than N units at one
//     instant; requests of different costs share one budget.
//   - RetryAfter of a denial is the largest debt − (N−c)·I: at exactly that
//     time the request is admitted (if nothing else spent the budget), and
//     Retry-After rounds it up to whole seconds, so a client that waits
//     Retry-After is admitted.
//   - Remaining counts units (requests of cost 1), as the IETF draft's r
//     counts quota units against q.
//
// A cost above a limit's N could never be admitted; config refuses such a
// rule, and Decide answers it with the fail mode (FaultPolicy).
//
// # Strict limits
//
// A limit with AlgorithmStrict admits at most N units in any half-open
// window of length T, where GCRA admits up to 2N − 1. It counts the units
// admitted in slices of L = ⌈T/5⌉ and admits a request at t, in slice c,
// iff the units of slices c−5 … c plus its cost are at most N (strict.go).
// Proof: slice c−6 ends at (c−5)·L ≤ t − 5L ≤ t − T, so slices c−5 … c hold
// every admission in (t−T, t]. Take any window [s, s+T) and its last
// admission, at t: every other admission in it lies in [s, t] ⊂ (t−T, t],
// so they were all counted when t was admitted, and with t's own units
// they are at most N. Denials change nothing. As for GCRA the decision time
// is the CAS's, so the bound holds across VMs (strict_test.go checks it by
// the adversarial simulation of window_test.go, which GCRA fails, and with
// 16 racing workers). The price of slices: a unit counts until its slice
// has left, up to 6L ≤ 6/5·T + 6 ns after its slice began, so a steady
// client gets N per 6/5·T; RetryAfter is exact: the instant enough of the
// oldest units have left. The state is strictValues (4)
// values of the entry: the end of the newest slice's visibility, a time
// (so the entry is active exactly while it matters), then the six slice
// counts packed two per value as negative numbers, which the record's
// repairs (clock steps, clamps) leave alone and every other limit reads as
// foreign state: an exhausted budget on a shared entry.
//
// # Calendar quotas
//
// A limit with a Calendar (day, week from Monday, month; in the zone
// UTC+UTCOffset) is a quota, not a GCRA limit: a request of cost c is
// admitted iff spent + c ≤ N, where spent is what the key was admitted in
// the calendar window [start, end) holding the decision time, and the window
// is forgotten at end. Its state is one int64 of the entry, the value
// end + spent (calendar.go): as a time it lies in the future exactly while
// the spend matters, so the table keeps the entry until the window ends
// (and at most MaxRequests ns, under a second, more) and reuses it after,
// like a paid-off debt; as a count, it survives a change of N. A value that
// is no window's (another key's state in a shared entry) counts as an
// exhausted quota; one of an earlier window counts nothing. Remaining is
// N − spent, Reset the time until end (0 with nothing spent), RetryAfter of
// a refusal the time until end, when the next window admits it. Guarantees:
// at most N units per key and window, checked in the same CAS as the key's
// other limits; 2N across a window's edge (it is a quota, not a rate). A
// clock stepping back more than a second re-bases the value like a TAT
// (below), which then reads as an earlier window's: that window's spend is
// forgotten, once, as when UTCOffset changes.
//
// Why GCRA and not a sliding-window counter: GCRA is exact — its bound above
// is a theorem — while a two-window weighted counter estimates the previous
// window's share by assuming its requests were spread evenly, so its
// worst case depends on how they really fell. GCRA also needs only one int64
// per limit: no window boundaries, no list of timestamps.
//
// # Debts
//
// Charge adds units to a key after the fact (a response reporting what its
// request really cost) without deciding: it never refuses, and each limit
// is left at most at an exhausted budget (a TAT of at + N·I; a quota's or
// a strict window's N units), so one absurd report costs the key at most
// one window's wait and no stored value leaves its bounds. The key's next
// requests are decided against the debt as usual.
//
// # Several limits
//
// A Policy groups up to MaxLimits limits (e.g. 10 per second and 1000 per
// hour). One record entry holds a TAT per limit, so every limit is checked
// and charged in one CAS: a request is admitted only if every limit admits
// it, and a denial charges none. The Decision reports the tightest limit:
//
//   - Remaining = N − ⌈debt/I⌉ (never negative): exactly how many more
//     requests that limit would admit right now.
//   - Reset = debt: the time until that limit's budget is full again
//     (Remaining = N), which is what "reset" means for a fixed window.
//   - RetryAfter (denials) = the time until every limit admits the request:
//     the largest debt − τ over the denying limits.
//
// For an admitted request the tightest limit has the fewest Remaining (ties:
// the longer Reset); for a denial it is the limit with the longest
// RetryAfter. Decision.AppendHeaders writes X-RateLimit-Limit, -Remaining and
// -Reset (seconds rounded up, or the tutorial's ISO timestamp), the IETF
// draft fields RateLimit-Policy (`"default";q=100;w=60`, every limit) and
// RateLimit (`"default";r=42;t=17`, the tightest: on a denial, the limit
// that refused), each item with the partition key pk when one is given
// (Partitioner: a keyed hash of the key, never the key), and Retry-After
// (whole seconds, rounded up, at least 1) on an enforced denial. t and
// Retry-After are rounded up, never down: a client that waits them finds
// what they promise.
//
// # Bounded memory: a fixed table
//
// Shared data never deletes a key, and keys that embed a time window leak.
// So the state is a fixed table of Slots entries in Slots/Ways buckets; a
// bucket is one shared-data key, Prefix + decimal index ("pc:rl:0" …
// "pc:rl:16383" with the defaults), and one fixed-size binary record
// (record.go: version, geometry, the time of the last write, then per entry
// the key's 64-bit hash and Width TATs). A bucket's record is
// 16 + Ways·(8 + 8·Width) bytes: 112 bytes with the defaults (Slots 65536,
// Ways 4, Width 2), so the values total Slots·(8 + 8·Width + 16/Ways) bytes =
// 1.75 MiB, plus Envoy's own cost per shared-data key (key string, hash-map
// node, value string header: roughly 100–150 bytes) for 16384 keys, about
// 2 MiB: about 4 MiB in all, whatever the number of distinct keys seen.
// Each VM's Limiter adds under 10 KiB: scratch for one record and a cache
// of 256 recent shared-data key strings (so a busy key allocates nothing).
// Shrinking the table later leaves the higher buckets in place, so the bound
// is that of the largest table configured since Envoy started.
//
// A key is identified by h = mix64(FNV-1a-64(policy name, NUL, key) ⊕ Seed)
// (deterministic in every VM and process; hash/maphash is seeded per
// process and so is not used), and lives in bucket h mod (Slots/Ways). In its
// bucket it uses, in order:
//
//  1. the entry holding h;
//  2. else the first entry that is empty or expired (every TAT ≤ now: its
//     budget is full, which is the same as no state, so taking it loses
//     nothing);
//  3. else, every entry holding another key's active state, its fallback
//     entry (h>>40 mod Ways): the key is charged against that entry's
//     budget, which is stricter for both keys and never admits more
//     (Decision.Faults has FaultShared). The entry is marked shared; a key
//     that later gets an entry of its own starts from the shared entry's
//     debt, so moving never hands it a fresh budget.
//
// With K keys active at once (keys with debt: roughly the distinct keys of
// the last window) and B = Slots/Ways buckets, a new key shares when its
// bucket already holds Ways active keys: about P(Poisson(K/B) ≥ Ways). With
// the defaults (B = 16384, Ways 4): K = 1000 → 5.5·10⁻⁷, K = 4096 →
// 1.3·10⁻⁴, K = 10000 → 3.6·10⁻³, K = 16384 → 1.9·10⁻², K = 32768 → 0.14.
// Two different keys with the same 64-bit hash share one entry (stricter):
// probability about K²/2⁶⁵. Seed makes the placement unpredictable to a
// caller who chooses keys.
//
// Why buckets and not linear probing over separate shared-data keys: the
// probe window would span several keys, which no single CAS covers. Two VMs
// inserting one key while a neighbour expires could each see a different
// first free slot and write the key twice, splitting its budget (more
// admissions). Within one bucket, finding, claiming, expiring and charging
// an entry is one atomic CAS. The load behaviour is that of a probe length
// of Ways.
//
// # Concurrency
//
// Decide reads the bucket (value and cas), decides, and writes with that cas;
// on shared.ErrCasMismatch it reads again, up to CASRetries retries. When they run
// out, or the store fails, the decision is the FailMode (FailOpen by
// default) and Decision.Faults says why (FaultContention, FaultStore).
// A bucket that does not exist yet is written with cas 0xFFFFFFFF, not 0:
// in Envoy, cas 0 overwrites unconditionally (a race between two VMs
// creating it would lose an admission), while a non-zero cas creates a
// missing key and fails against an existing one. The decision time is
// max(clock, the record's last write): with a monotonic clock that is a time
// inside the request's own execution (between its clock read and its
// successful write), so the proof above holds for real time, across VMs.
//
// # Faults
//
// Nothing stored is trusted; nothing panics. Each repair is reported in
// Decision.Faults, for a metric, and persisted by the next write:
//
//   - A record of the wrong length, version or geometry, or with reserved
//     bits set: treated as an empty bucket (FaultCorrupt). Changing Slots,
//     Ways, Width, Prefix or Seed therefore resets the counters once.
//   - A value absurdly far in the future (beyond any calendar window, a
//     31-day month: MaxCalendarWindow; or, for the key's own entry, beyond
//     an exhausted budget: N·I, a quota's end + N): clamped to that
//     (FaultClamped). Clamping never admits a request that an exhausted
//     budget would refuse, and delays one by at most I. Tightening a
//     policy's limits in a config reload clamps each active key once: debts
//     are kept in time, not reset, so a reload grants no fresh burst.
//   - A clock more than one second behind the record's last write (a step
//     backwards): each debt is re-based on the new clock, keeping what it was
//     at the last write (FaultClockBackwards): no credit and no penalty.
//     Smaller gaps are ordinary races between VMs and are absorbed by the
//     decision time above. A clock stepping forwards refills budgets early;
//     it cannot be told from time passing.
package ratelimit
