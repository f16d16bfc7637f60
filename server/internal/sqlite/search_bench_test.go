package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"chat/server/internal/history"
)

// benchCorpus is a synthetic chat history with a realistic word
// distribution: a vocabulary of words built from shared syllables (so
// that prefixes match many words, as in a real language), used with
// Zipf frequencies (a few words are in a large part of the messages,
// most are rare), 3 to 20 words a message, spread over rooms of
// different sizes.
type benchCorpus struct {
	vocab []string // by frequency rank, most frequent first
	rooms []string
}

var syllables = strings.Fields("ka lo mi ne ru sa ti po de fa gu hi jo be ca da el fi go ha " +
	"in ja ke li ma no or pa qu ri se to un va we xi yo ze an ba co di ex")

func newBenchCorpus(vocabSize, rooms int) *benchCorpus {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	c := &benchCorpus{}
	// The most frequent words are short, as in every language.
	for len(c.vocab) < vocabSize {
		n := 1 + min(len(c.vocab)/40, 3) + r.IntN(2)
		var b strings.Builder
		for range n {
			b.WriteString(syllables[r.IntN(len(syllables))])
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			c.vocab = append(c.vocab, w)
		}
	}
	for i := range rooms {
		c.rooms = append(c.rooms, fmt.Sprintf("room-%03d", i))
	}
	return c
}

// fill writes n messages through the commit loop, in batches as a busy
// server commits them, and returns how long it took.
func (c *benchCorpus) fill(tb testing.TB, l *Log, n int) time.Duration {
	r := rand.New(rand.NewPCG(3, 4))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(5, 6)), 1.07, 2, uint64(len(c.vocab)-1))
	foreign := rand.New(rand.NewPCG(9, 10)) // its own stream: the other words stay as they were
	start := time.Now()
	words := make([]string, 0, 20)
	for i := range n {
		words = words[:0]
		for range 3 + r.IntN(18) {
			words = append(words, c.vocab[zipf.Uint64()])
		}
		// Rooms of different sizes: room k gets about twice the
		// messages of room 2k.
		k := min(int(float64(len(c.rooms))*r.Float64()*r.Float64()), len(c.rooms)-1)
		room := c.rooms[k]
		// foreignWord: in 30% of the messages of every room but the two
		// smallest.
		if k < len(c.rooms)-2 && foreign.IntN(10) < 3 {
			words = append(words, foreignWord)
		}
		if err := l.Append(&history.Request{Room: room, Sender: fmt.Sprint("user", r.IntN(500)), ID: strconv.Itoa(i),
			Text: strings.Join(words, " ")}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := l.Flush(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// foreignWord is in 30% of the messages of every room of the benchmark's
// corpus but the two smallest (benchCorpus.fill).
const foreignWord = "qxforeign"

// BenchmarkSearch: FTS search over a history of 1,000,000 messages
// (BENCH_SEARCH_MESSAGES to change it) in 200 rooms, by a searcher in 20
// of them, for words of each kind. Each sub-benchmark runs its queries
// in turn, each a different word of its kind, and reports the
// percentiles of one query's time (p50-ms, p99-ms) beside ns/op. The
// database is built once, through the commit loop, in a temporary
// directory (a minute or two); run with -benchtime=200x.
func BenchmarkSearch(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("BENCH_SEARCH_MESSAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	c := newBenchCorpus(50_000, 200)
	path := filepath.Join(b.TempDir(), "chat.db")
	l, err := Open(path, func([]history.Result) {}, Options{Synchronous: "normal"})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	took := c.fill(b, l, n)
	fi, _ := os.Stat(path)
	var ftsPages, pageSize int64
	_ = l.read.QueryRow("SELECT count(*) FROM words_data").Scan(&ftsPages)
	_ = l.read.QueryRow("PRAGMA page_size").Scan(&pageSize)
	b.Logf("%d messages in %d rooms written in %v (%.0f/s); file %d MB; words_data %d rows",
		n, len(c.rooms), took.Round(time.Second), float64(n)/took.Seconds(), fi.Size()>>20, ftsPages)
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("load average before the queries: %s", strings.TrimSpace(string(load)))

	// The searcher's 20 rooms: some big, most small, as a user's are.
	r := rand.New(rand.NewPCG(7, 8))
	var scope []string
	for _, i := range r.Perm(len(c.rooms))[:20] {
		scope = append(scope, c.rooms[i])
	}
	var scopeCount int64
	for _, room := range scope {
		var k int64
		_ = l.read.QueryRow("SELECT count(*) FROM messages WHERE room = ?", room).Scan(&k)
		scopeCount += k
	}
	b.Logf("the searcher's 20 rooms hold %d messages (%.1f%%)", scopeCount, 100*float64(scopeCount)/float64(n))

	pick := func(lo, hi int) func(i int) string {
		return func(i int) string { return c.vocab[lo+(i*7919)%(hi-lo)] }
	}
	prefix := func(k int) func(i int) string {
		return func(i int) string {
			w := c.vocab[(i*31)%2000]
			return w[:min(k, len(w))]
		}
	}
	// run times each query twice: by the clock, and by the CPU time of
	// the thread that ran it (the query runs on the calling goroutine,
	// locked to its thread), which leaves out the waits for a core on a
	// shared machine.
	run := func(name string, query func(i int) history.Query) {
		b.Run(name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var wall, cpu []time.Duration
			hits := 0
			for i := 0; b.Loop(); i++ {
				q := query(i)
				c0 := threadCPU()
				start := time.Now()
				h, _, err := l.Search(ctx, q)
				wall = append(wall, time.Since(start))
				cpu = append(cpu, threadCPU()-c0)
				if err != nil {
					b.Fatal(err)
				}
				hits += len(h)
			}
			b.StopTimer()
			pct := func(ts []time.Duration, p float64) float64 {
				slices.Sort(ts)
				return float64(ts[min(len(ts)-1, int(p*float64(len(ts))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(wall, 0.50), "p50-ms")
			b.ReportMetric(pct(wall, 0.99), "p99-ms")
			b.ReportMetric(pct(wall, 1), "max-ms")
			b.ReportMetric(pct(cpu, 0.50), "cpu-p50-ms")
			b.ReportMetric(pct(cpu, 0.99), "cpu-p99-ms")
			b.ReportMetric(float64(hits)/float64(len(wall)), "hits/op")
		})
	}
	queries := []struct {
		name  string
		query func(i int) string
		limit int
	}{
		{"common", pick(0, 10), 20},        // each in 5–30% of the messages
		{"frequent", pick(10, 200), 20},    // 0.3–5%
		{"medium", pick(200, 5000), 20},    // 0.01–0.3%
		{"rare", pick(20_000, 50_000), 20}, // a few messages each, often none in scope
		{"prefix2", prefix(2), 20},
		{"prefix3", prefix(3), 20},
		{"prefix4", prefix(4), 20},
		{"common+prefix", func(i int) string { return pick(0, 10)(i) + " " + prefix(3)(i) }, 20},
		{"medium+rare", func(i int) string { return pick(200, 5000)(i) + " " + pick(20_000, 50_000)(i) }, 20},
		{"common-50", pick(0, 10), 50},
	}
	for _, q := range queries {
		run(q.name, func(i int) history.Query { return history.Query{Rooms: scope, Text: q.query(i), Limit: q.limit} })
	}
	// Adversarial: a searcher in the two smallest rooms, for a word in
	// 30% of every other room's messages and none of theirs, and for
	// common words, which their few messages hold far less often than the
	// server's.
	small := c.rooms[len(c.rooms)-2:]
	var smallCount int64
	_ = l.read.QueryRow("SELECT count(*) FROM messages WHERE room IN (?, ?)", small[0], small[1]).Scan(&smallCount)
	b.Logf("the two smallest rooms hold %d messages", smallCount)
	run("adversarial-foreign", func(i int) history.Query {
		return history.Query{Rooms: small, Text: foreignWord}
	})
	run("adversarial-common", func(i int) history.Query {
		return history.Query{Rooms: small, Text: pick(0, 10)(i)}
	})
	run("adversarial-frequent", func(i int) history.Query {
		return history.Query{Rooms: small, Text: pick(10, 200)(i)}
	})
	run("adversarial-foreign-20", func(i int) history.Query {
		return history.Query{Rooms: scope, Text: foreignWord + " " + pick(20_000, 50_000)(i)}
	})
	// Paging back: the page at the middle of the history.
	var mid int64
	_ = l.read.QueryRow("SELECT time FROM messages INDEXED BY messages_rid WHERE rid IS NOT NULL ORDER BY rid LIMIT 1 OFFSET ?", n/2).Scan(&mid)
	run("common-page-back", func(i int) history.Query {
		return history.Query{Rooms: scope, Text: pick(0, 10)(i), Before: uint64(mid)}
	})
	// A last word longer than the prefix indexes: it merges the lists
	// of every word it begins.
	var long []string
	for _, w := range c.vocab[40:5000] {
		if len(w) >= 7 {
			long = append(long, w[:6])
		}
	}
	run("prefix6", func(i int) history.Query {
		return history.Query{Rooms: scope, Text: long[(i*31)%len(long)]}
	})
	// The same through read connections that neither map the file nor
	// cache more than SQLite's default (Open's readers do both).
	base := l.read
	plain, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&mode=ro")
	if err != nil {
		b.Fatal(err)
	}
	plain.SetMaxOpenConns(4)
	plain.SetMaxIdleConns(4)
	l.read = plain
	for _, q := range queries {
		run("unmapped-"+q.name, func(i int) history.Query { return history.Query{Rooms: scope, Text: q.query(i), Limit: q.limit} })
	}
	l.read = base
	plain.Close()
	// The same after merging the index into one segment: how much of the
	// time goes to reading many segments.
	start := time.Now()
	if _, err := l.write.Exec("INSERT INTO words (words) VALUES ('optimize')"); err != nil {
		b.Fatal(err)
	}
	b.Logf("optimize took %v", time.Since(start).Round(time.Millisecond))
	for _, q := range queries {
		if q.name == "common" || q.name == "common-50" || q.name == "prefix4" || q.name == "common+prefix" {
			run("optimized-"+q.name, func(i int) history.Query { return history.Query{Rooms: scope, Text: q.query(i), Limit: q.limit} })
		}
	}
}

// threadCPU is the CPU time the calling thread has used (exact, unlike
// getrusage's, which counts in scheduler ticks).
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
