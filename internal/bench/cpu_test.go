package bench

import (
	"errors"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	const tail = " R 18921 18921 29739 0 -1 4194304 97 0 0 0 1234 567 0 0 20 0 1 0 132587 3133440 381 18446744073709551615 0"
	for _, tt := range []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "plain", in: "18923 (agentid)" + tail, want: 1234 + 567},
		{name: "command with spaces and parentheses", in: "18923 (a) (b c)" + tail, want: 1234 + 567},
		{name: "empty command", in: "1 ()" + tail, want: 1234 + 567},
		{name: "trailing newline", in: "18923 (agentid)" + tail + "\n", want: 1234 + 567},
		{name: "fields end at stime", in: "1 (x) R 1 1 1 0 -1 0 0 0 0 0 7 8", want: 15},
		{name: "too few fields", in: "1 (x) R 1 1 1 0 -1 0 0 0 0 0 7", wantErr: true},
		{name: "no parentheses", in: "1 x R 1 1 1 0 -1 0 0 0 0 0 7 8", wantErr: true},
		{name: "only a closing parenthesis", in: "1 x) R 1 1 1 0 -1 0 0 0 0 0 7 8", wantErr: true},
		{name: "utime not a number", in: "1 (x) R 1 1 1 0 -1 0 0 0 0 0 -7 8", wantErr: true},
		{name: "stime not a number", in: "1 (x) R 1 1 1 0 -1 0 0 0 0 0 7 eight", wantErr: true},
		{name: "overflow", in: "1 (x) R 1 1 1 0 -1 0 0 0 0 0 18446744073709551615 1", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcStat([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrProcStat) {
					t.Fatalf("ParseProcStat = %d, %v; want ErrProcStat", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseProcStat = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestTicksToDuration(t *testing.T) {
	if got := ticksToDuration(250); got != 2500*time.Millisecond {
		t.Fatalf("250 ticks = %s, want 2.5s", got)
	}
}

func TestProcessCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := ProcessCPU(os.Getpid()); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("ProcessCPU on %s = %v, want ErrUnsupported", runtime.GOOS, err)
		}
		return
	}
	if _, err := ProcessCPU(os.Getpid()); err != nil {
		t.Fatalf("ProcessCPU(self): %v", err)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Fatal("ProcessCPU(-1) succeeded")
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("18923 (agentid) R 1 1 1 0 -1 0 0 0 0 0 1234 567 0 0 20 0 1 0"))
	f.Add([]byte("1 (a) b)) R 1 1 1 0 -1 0 0 0 0 0 7 8"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseProcStat(b)
		if err != nil && !errors.Is(err, ErrProcStat) {
			t.Fatalf("error %v is not ErrProcStat", err)
		}
		if err != nil && got != 0 {
			t.Fatalf("error with a value %d", got)
		}
	})
}
