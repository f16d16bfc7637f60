package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// Summarize prints the JSON reports in files as one Markdown table, a row
// per run, for BENCHMARKS.md.
func Summarize(w io.Writer, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("-summarize needs report files (written with -json-file)")
	}
	fmt.Fprintln(w, "| scenario | date (UTC) | label | load | join | delivered | lost / dup | latency p50 / p90 / p99 / max | send→ack p99 | server CPU | server RSS | generator CPU | run | target |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		fmt.Fprintln(w, r.row())
	}
	return nil
}

func (r *Report) row() string {
	c := r.Config
	name := c.Scenario
	if name == "" {
		name = "custom"
	}
	if r.Transport != "tcp" {
		name += " (" + r.Transport + ")"
	}
	load := fmt.Sprintf("%s recv", n(c.Receivers))
	if c.Senders > 0 {
		load += fmt.Sprintf(" + %d send, %g msg/s × %v", c.Senders, c.Rate, c.Duration)
	} else {
		load += fmt.Sprintf(", %d room(s), held %v", len(r.Rooms), c.Duration)
	}
	if len(r.Nodes) > 0 {
		var per []string
		for _, nd := range r.Nodes {
			per = append(per, fmt.Sprintf("%s+%d", n(nd.Joined), nd.Senders))
		}
		load += fmt.Sprintf("; over %d servers (recv+send: %s)", len(r.Nodes), strings.Join(per, ", "))
	}
	join := fmt.Sprintf("%s/%s in %.3f s", n(r.Join.Joined), n(r.Join.Attempted), r.Join.Seconds)
	delivered, lost, lat, ack := "–", "–", "–", "–"
	if c.Senders > 0 {
		delivered = fmt.Sprintf("%s/%s", n(r.Delivery.Received), n(r.Delivery.Expected))
		lost = fmt.Sprintf("%s / %s", n(r.Delivery.Missing+r.SenderCopies.Missing+r.Sends.Unacked), n(r.Delivery.Duplicates+r.SenderCopies.Duplicates))
		lat = fmt.Sprintf("%.2f / %.2f / %.2f / %.1f ms", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
		ack = fmt.Sprintf("%.2f ms", r.Ack.P99)
	}
	srvCPU, srvRSS := "–", "–"
	if s := r.Server; s != nil && s.WindowEnd != nil {
		srvCPU = fmt.Sprintf("%.2f core", s.Cores)
		srvRSS = fmt.Sprintf("%s → %s (%.2f KiB/conn)", mib(s.Before.RSSKiB), mib(s.WindowEnd.RSSKiB), s.RSSPerConnKiB)
		if len(r.Servers) > 0 {
			var cpu, rss []string
			for _, x := range r.Servers {
				if x.WindowEnd == nil {
					continue
				}
				cpu = append(cpu, fmt.Sprintf("%.2f", x.Cores))
				rss = append(rss, mib(x.WindowEnd.RSSKiB))
			}
			srvCPU = fmt.Sprintf("%.2f core = %s (%d servers)", s.Cores, strings.Join(cpu, " + "), len(r.Servers))
			srvRSS = fmt.Sprintf("%s → %s = %s (%.2f KiB/conn)", mib(s.Before.RSSKiB), mib(s.WindowEnd.RSSKiB), strings.Join(rss, " + "), s.RSSPerConnKiB)
		} else if len(r.CPUBusy) > 0 {
			srvCPU += fmt.Sprintf(" (CPU 0 %.0f%% busy)", 100*r.CPUBusy[0])
		}
		if s.CPUPerDeliveryMicros > 0 {
			srvCPU += fmt.Sprintf("; %.2f µs/delivery", s.CPUPerDeliveryMicros)
		}
	}
	gen := fmt.Sprintf("%.2f of %d", r.Generator.Cores, r.Generator.Available)
	run := "valid"
	if !r.Valid {
		run = "**INVALID**"
	}
	if !r.Clean {
		run += ", **not clean**"
	}
	var targets []string
	for _, t := range r.Targets {
		v := "PASS"
		if !t.Pass {
			v = "**MISS**"
		}
		targets = append(targets, fmt.Sprintf("%s %s: %s", t.What, t.Target, v))
	}
	date, _, _ := strings.Cut(strings.Replace(r.Date, "T", " ", 1), "Z")
	return "| " + strings.Join([]string{name, date, c.Label, load, join, delivered, lost, lat, ack, srvCPU, srvRSS, gen, run,
		strings.Join(targets, "; ")}, " | ") + " |"
}
