package bench

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"time"
)

// userHZ is the unit of the utime and stime fields of /proc/<pid>/stat:
// USER_HZ, which the kernel ABI fixes at 100 on every architecture Go
// supports (proc(5)).
const userHZ = 100

// ProcessCPU returns the CPU time (user + system, all threads) process pid
// has used so far, read from /proc/<pid>/stat with a resolution of 10 ms.
// It works on Linux only; elsewhere it returns ErrUnsupported.
func ProcessCPU(pid int) (time.Duration, error) {
	if runtime.GOOS != "linux" {
		return 0, ErrUnsupported
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("bench: read cpu time of process %d: %w", pid, err)
	}
	ticks, err := ParseProcStat(b)
	if err != nil {
		return 0, err
	}
	return ticksToDuration(ticks), nil
}

// ticksToDuration converts USER_HZ ticks to a duration (saturating; a
// process would need 2,900 years of CPU to reach it).
func ticksToDuration(ticks uint64) time.Duration {
	const tick = time.Second / userHZ
	if ticks > uint64(math.MaxInt64/tick) {
		return math.MaxInt64
	}
	return time.Duration(ticks) * tick //nolint:gosec // bounded above
}

// ParseProcStat returns utime + stime, in USER_HZ ticks, from the content
// of a /proc/<pid>/stat file (proc(5): fields 14 and 15, counted from 1).
// The second field, the command name in parentheses, may itself hold
// spaces and parentheses, so fields are counted after its last ')'.
func ParseProcStat(b []byte) (uint64, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 || bytes.IndexByte(b, '(') < 0 {
		return 0, fmt.Errorf("%w: no command name in parentheses", ErrProcStat)
	}
	// After ")": field 3 (state) onwards; utime is field 14, stime 15.
	fields := bytes.Fields(b[end+1:])
	const utimeAt, stimeAt = 14 - 3, 15 - 3
	if len(fields) <= stimeAt {
		return 0, fmt.Errorf("%w: %d fields after the command name, want at least %d", ErrProcStat, len(fields), stimeAt+1)
	}
	utime, err := strconv.ParseUint(string(fields[utimeAt]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: utime %q", ErrProcStat, fields[utimeAt])
	}
	stime, err := strconv.ParseUint(string(fields[stimeAt]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: stime %q", ErrProcStat, fields[stimeAt])
	}
	if utime+stime < utime {
		return 0, fmt.Errorf("%w: utime + stime overflows", ErrProcStat)
	}
	return utime + stime, nil
}
