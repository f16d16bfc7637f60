// Package procstat reads a Linux process's CPU time and memory from /proc
// (its own CPU time from getrusage, which is finer), so a benchmark can
// report what the server (and the generator itself) spent.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports.
const clockTicks = 100

// Sample is one reading of a process.
type Sample struct {
	At         time.Time `json:"at"`
	CPUSeconds float64   `json:"cpu_seconds"` // user + system, all threads
	UserSec    float64   `json:"user_seconds"`
	SysSec     float64   `json:"system_seconds"`
	RSSKiB     int64     `json:"rss_kib"` // VmRSS: resident memory now
	HWMKiB     int64     `json:"hwm_kib"` // VmHWM: peak resident memory
	Threads    int64     `json:"threads"`
	FDs        int       `json:"fds,omitempty"` // open file descriptors (-1 if unreadable)
}

// Read samples process pid; pid 0 means this process.
func Read(pid int) (Sample, error) {
	dir := "/proc/self"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	s := Sample{At: time.Now()}
	if pid == 0 {
		// getrusage counts in microseconds, /proc in ticks of 10 ms: a
		// light generator's whole run can be less than one tick.
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return s, err
		}
		s.UserSec = time.Duration(ru.Utime.Nano()).Seconds()
		s.SysSec = time.Duration(ru.Stime.Nano()).Seconds()
	} else {
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			return s, err
		}
		if s.UserSec, s.SysSec, err = parseStat(stat); err != nil {
			return s, err
		}
	}
	s.CPUSeconds = s.UserSec + s.SysSec
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	s.RSSKiB, s.HWMKiB, s.Threads = parseStatus(status)
	if ents, err := os.ReadDir(dir + "/fd"); err == nil {
		s.FDs = len(ents)
	} else {
		s.FDs = -1
	}
	return s, nil
}

// parseStat returns utime and stime in seconds from /proc/PID/stat. The
// command name (field 2) is in parentheses and may contain spaces, so
// fields are counted from the last ')'.
func parseStat(b []byte) (user, sys float64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("procstat: malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, 0, errors.New("procstat: short stat")
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("procstat: stat: %w", err)
	}
	return float64(u) / clockTicks, float64(s) / clockTicks, nil
}

// parseStatus returns VmRSS and VmHWM in KiB and the thread count.
func parseStatus(b []byte) (rss, hwm, threads int64) {
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		case "Threads":
			threads = n
		}
	}
	return rss, hwm, threads
}

// Cmdline returns the command line of process pid, arguments joined by
// spaces, or "" if it cannot be read.
func Cmdline(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// Affinity returns the CPUs process pid may run on, as in /proc/PID/status
// (Cpus_allowed_list, e.g. "0" or "0-1"); pid 0 means this process.
func Affinity(pid int) string {
	dir := "/proc/self"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	b, err := os.ReadFile(dir + "/status")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// CPUTimes is the machine's CPU time by kind, all CPUs together, in
// seconds since boot (from the first line of /proc/stat).
type CPUTimes struct {
	User, Nice, System, Idle, IOWait, IRQ, SoftIRQ, Steal float64
}

// Busy is the time not idle or waiting for I/O, steal excluded.
func (c CPUTimes) Busy() float64 { return c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ }

// Sub returns c - o.
func (c CPUTimes) Sub(o CPUTimes) CPUTimes {
	return CPUTimes{c.User - o.User, c.Nice - o.Nice, c.System - o.System, c.Idle - o.Idle,
		c.IOWait - o.IOWait, c.IRQ - o.IRQ, c.SoftIRQ - o.SoftIRQ, c.Steal - o.Steal}
}

// ReadCPUTimes reads the machine's CPU times: all CPUs together, and each
// CPU (index i is CPU i).
func ReadCPUTimes() (total CPUTimes, perCPU []CPUTimes, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}, nil, err
	}
	for line := range strings.Lines(string(b)) {
		name, _, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(name, "cpu") {
			break // the cpu lines come first
		}
		c, err := parseCPULine(line)
		if err != nil {
			return CPUTimes{}, nil, err
		}
		if name == "cpu" {
			total = c
		} else {
			perCPU = append(perCPU, c)
		}
	}
	return total, perCPU, nil
}

func parseCPULine(line string) (CPUTimes, error) {
	f := strings.Fields(line)
	if len(f) < 9 || !strings.HasPrefix(f[0], "cpu") {
		return CPUTimes{}, errors.New("procstat: malformed /proc/stat")
	}
	var v [8]float64
	for i := range v {
		n, err := strconv.ParseUint(f[i+1], 10, 64)
		if err != nil {
			return CPUTimes{}, fmt.Errorf("procstat: /proc/stat: %w", err)
		}
		v[i] = float64(n) / clockTicks
	}
	return CPUTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, nil
}
