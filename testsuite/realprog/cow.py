# A parent and its child share 32 MiB copy-on-write since the fork (the
# child changes one byte of it): esky stores those pages once, in the
# parent's image. The child waits on a pipe; the parent says ready on
# stderr, reads "go" from stdin, lets the child go, and both print a
# checksum of the memory they see.
import os
import sys

big = bytearray(range(256)) * (32 * 1024 * 1024 // 256)
r, w = os.pipe()
child = os.fork()
if child == 0:
    os.close(w)
    big[100] = 42
    os.read(r, 1)
    print("child", sum(big[::4096]), big[100], flush=True)
    os._exit(0)
os.close(r)
print("ready", file=sys.stderr, flush=True)
sys.stdin.readline()
os.write(w, b"x")
os.waitpid(child, 0)
print("parent", sum(big[::4096]), big[100], flush=True)
