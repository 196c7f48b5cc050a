package dataset

import (
	"encoding/binary"
	"fmt"

	"github.com/pierrec/lz4/v4"
)

// lz4Frames decompresses LZ4 frames (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md),
// as go-rosbag's writer and ROS's roslz4 write them, from src into all of dst: the chunk's
// declared size. It parses the frame itself and uses only lz4's block decoder, so nothing is
// allocated (the stream reader takes a 4 MiB block buffer per chunk) and every length is
// checked. Dependent blocks are decoded with the preceding 64 KiB of dst as their dictionary.
// Checksums are skipped, not verified: the message decoders check what they read.
func lz4Frames(dst, src []byte) error {
	off := 0
	for off < len(dst) {
		if len(src) < 7 {
			return fmt.Errorf("lz4 frame header cut off")
		}
		if m := binary.LittleEndian.Uint32(src); m != 0x184D2204 {
			return fmt.Errorf("lz4 frame magic %#x", m)
		}
		flg := src[4]
		if flg>>6 != 1 {
			return fmt.Errorf("lz4 frame version %d", flg>>6)
		}
		indep, blockSum, sizeField, contentSum, dictID := flg&0x20 != 0, flg&0x10 != 0, flg&0x08 != 0, flg&0x04 != 0, flg&0x01 != 0
		hdr := 7 // magic, FLG, BD, HC
		if sizeField {
			hdr += 8
		}
		if dictID {
			return fmt.Errorf("lz4 frame needs an external dictionary")
		}
		if len(src) < hdr {
			return fmt.Errorf("lz4 frame header cut off")
		}
		src = src[hdr:]
		for {
			if len(src) < 4 {
				return fmt.Errorf("lz4 block size cut off")
			}
			bs := binary.LittleEndian.Uint32(src)
			src = src[4:]
			if bs == 0 { // end mark
				break
			}
			n := int(bs & 0x7FFFFFFF)
			if n > len(src) {
				return fmt.Errorf("lz4 block of %d bytes, %d left", n, len(src))
			}
			block := src[:n]
			src = src[n:]
			if bs&0x80000000 != 0 { // stored uncompressed
				if n > len(dst)-off {
					return fmt.Errorf("lz4 data beyond the declared %d bytes", len(dst))
				}
				off += copy(dst[off:], block)
			} else {
				var k int
				var err error
				if indep {
					k, err = lz4.UncompressBlock(block, dst[off:])
				} else {
					k, err = lz4.UncompressBlockWithDict(block, dst[off:], dst[max(0, off-64<<10):off])
				}
				if err != nil {
					return fmt.Errorf("lz4 block: %v (or data beyond the declared %d bytes)", err, len(dst))
				}
				off += k
			}
			if blockSum {
				if len(src) < 4 {
					return fmt.Errorf("lz4 block checksum cut off")
				}
				src = src[4:]
			}
		}
		if contentSum {
			if len(src) < 4 {
				return fmt.Errorf("lz4 content checksum cut off")
			}
			src = src[4:]
		}
	}
	return nil
}
