package workloadapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// hashCacheSize bounds the executables whose hashes a ProcReader keeps;
// when it is reached the cache starts afresh.
const hashCacheSize = 256

// ProcReader returns the ExecutableReader of a proc file system mounted at
// root ("/proc" on a node): the path is the link /proc/<pid>/exe
// (symbolic links resolved by the kernel; " (deleted)" appended when the
// file was removed or replaced since the process started), the SHA-256
// that of the file the link opens, which is the one the process runs even
// when it was replaced. Nothing of /proc is parsed. A process that exits
// meanwhile, or whose /proc entry the node may not read (another user's
// process without CAP_SYS_PTRACE), yields an error: the caller then has
// no path and no hash, and no path or sha256 selector matches it.
//
// Hashing a large executable on every connection would cost milliseconds,
// so on Linux the reader remembers each hash under the identity of the
// file it opened: device, inode, size, and modification and status-change
// times to the nanosecond. Any write to the file changes its ctime, which
// no caller can set, so a changed file is hashed again.
func ProcReader(root string) ExecutableReader {
	var (
		mu     sync.Mutex
		hashes = map[fileID]string{}
	)
	return func(pid int32) (Executable, error) {
		if pid <= 0 {
			return Executable{}, fmt.Errorf("workloadapi: no process id")
		}
		link := filepath.Join(root, strconv.FormatInt(int64(pid), 10), "exe")
		path, err := os.Readlink(link)
		if err != nil {
			return Executable{}, fmt.Errorf("workloadapi: executable of process %d: %w", pid, err)
		}
		f, err := os.Open(link) //nolint:gosec // the link of a process under the node's proc root
		if err != nil {
			return Executable{Path: path}, fmt.Errorf("workloadapi: open the executable of process %d: %w", pid, err)
		}
		defer func() { _ = f.Close() }()
		id, cacheable := identify(f)
		if cacheable {
			mu.Lock()
			sum, ok := hashes[id]
			mu.Unlock()
			if ok {
				return Executable{Path: path, SHA256: sum}, nil
			}
		}
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return Executable{Path: path}, fmt.Errorf("workloadapi: hash the executable of process %d: %w", pid, err)
		}
		sum := hex.EncodeToString(h.Sum(nil))
		if cacheable {
			mu.Lock()
			if len(hashes) >= hashCacheSize {
				clear(hashes)
			}
			hashes[id] = sum
			mu.Unlock()
		}
		return Executable{Path: path, SHA256: sum}, nil
	}
}
