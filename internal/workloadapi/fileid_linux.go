package workloadapi

import (
	"os"
	"syscall"
)

// fileID identifies a file's contents without reading them: a write
// changes the ctime at least.
type fileID struct {
	dev, ino, size      uint64
	mtimeSec, mtimeNsec int64
	ctimeSec, ctimeNsec int64
}

// identify returns the identity of the open file f, and false when it
// cannot be read.
func identify(f *os.File) (fileID, bool) {
	fi, err := f.Stat()
	if err != nil {
		return fileID{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{
		dev: st.Dev, ino: st.Ino, size: uint64(st.Size), //nolint:gosec // a file size is not negative
		mtimeSec: st.Mtim.Sec, mtimeNsec: st.Mtim.Nsec,
		ctimeSec: st.Ctim.Sec, ctimeNsec: st.Ctim.Nsec,
	}, true
}
