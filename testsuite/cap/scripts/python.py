# A python program across a checkpoint: dicts, floats, a generator in the
# middle of its iteration and big integers, before and after the sync point
# (@@sync on stderr, then a line read from stdin).
import sys


def fib():
    a, b = 0, 1
    while True:
        yield a
        a, b = b, a + b


d = {}
x = 0.5
for i in range(2000):
    x = 3.7 * x * (1 - x)
    d["key%d" % i] = x
gen = fib()
first = [next(gen) for _ in range(50)]
print("before:", len(d), "keys, x=%.15g" % x, "fib49=%d" % first[-1])

sys.stderr.write("@@sync\n")
sys.stderr.flush()
line = sys.stdin.readline()
if line != "go\n":
    sys.exit("expected go, got %r" % line)

total = sum(d[k] for k in sorted(d))
print("after: sum=%.9f key777=%.12f" % (total, d["key777"]))
print("fib continues:", [next(gen) for _ in range(3)])
print("bigint:", 3 ** 200 % 1000000007)
for i in range(1000):
    x = 3.7 * x * (1 - x)
print("x=%.15g" % x)
