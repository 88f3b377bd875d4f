# Python threads across checkpoints (issue 9): worker threads computing
# deterministic results in stages, each mid-work at every sync point, and
# the same pid and native thread ids after each resume.
#
# usage: python3 threads.py STAGES
#
# Half-way through its loop of each stage, every worker reports and waits
# for the gate of the stage, with its loop's variables live, each in its
# own way:
# spinning on the GIL (running Python code), in Event.wait() (an untimed
# futex wait), in Condition.wait(timeout) (a timed one), in a time.sleep()
# loop (clock_nanosleep). Once all of them are there, the main thread writes
#   @@stage S pid PID tids TID...
# on stderr (for the driver: the values never reach stdout) and reads one
# line, "go", from stdin; then it prints what it checked and opens the gate.
# Nothing on stdout depends on pids, tids or timing: a plain run and a run
# checkpointed and resumed at any stage print the same.
import os
import sys
import threading
import time

MASK = (1 << 64) - 1
KINDS = ("spin", "event", "timed-cond", "sleep", "spin")
CHUNK = 20000			# iterations of a worker per stage


def tasks():
    return sorted(int(t) for t in os.listdir("/proc/self/task"))


class Worker(threading.Thread):
    def __init__(self, index, stages, hub):
        super().__init__(name="worker-%d" % index)
        self.index = index
        self.kind = KINDS[index % len(KINDS)]
        self.stages = stages
        self.hub = hub
        self.tid0 = None
        self.tid_kept = True
        self.state = 0x9E3779B97F4A7C15 * (index + 1) & MASK
        self.history = {}
        self.floats = 0.5 + index / 100.0

    def check_tid(self):
        tid = threading.get_native_id()
        if tid != self.tid0 or tid != self.native_id:
            self.tid_kept = False

    def run(self):
        self.tid0 = threading.get_native_id()
        x = self.state
        f = self.floats
        for stage in range(1, self.stages + 1):
            seed = stage * 1000003 + self.index
            for i in range(CHUNK):
                if i == CHUNK // 2:
                    # Mid-loop: x, f and i live in this frame across the
                    # checkpoint.
                    self.hub.arrive(stage)
                    self.hub.wait_gate(self, stage)
                    self.check_tid()
                x = (x * 6364136223846793005 + seed + i) & MASK
                x ^= x >> 29
                f = 3.7 * f * (1.0 - f)
            self.history[stage] = x % 1000000007
        self.state = x
        self.floats = f
        self.check_tid()


class Hub:
    """Where the workers report the end of a stage and wait for its gate."""

    def __init__(self, nworkers):
        self.cond = threading.Condition()
        self.arrived = {}
        self.nworkers = nworkers
        self.gate = 0			# stages opened
        self.event = {}
        self.gate_cond = threading.Condition()

    def event_of(self, stage):
        with self.cond:
            return self.event.setdefault(stage, threading.Event())

    def arrive(self, stage):
        with self.cond:
            self.arrived[stage] = self.arrived.get(stage, 0) + 1
            self.cond.notify_all()

    def wait_all(self, stage):
        with self.cond:
            while self.arrived.get(stage, 0) < self.nworkers:
                self.cond.wait()

    def open(self, stage):
        self.event_of(stage).set()
        with self.gate_cond:
            self.gate = stage
            self.gate_cond.notify_all()

    def wait_gate(self, worker, stage):
        ev = self.event_of(stage)
        if worker.kind == "spin":
            spin = 1
            while not ev.is_set():
                for _ in range(200):
                    spin = (spin * 31 + 7) % 1000003
        elif worker.kind == "event":
            ev.wait()
        elif worker.kind == "timed-cond":
            with self.gate_cond:
                while self.gate < stage:
                    self.gate_cond.wait(timeout=3600)
        else:
            while not ev.is_set():
                time.sleep(0.002)


def main():
    stages = int(sys.argv[1])
    pid0 = os.getpid()
    main_tid0 = threading.get_native_id()
    hub = Hub(len(KINDS))
    workers = [Worker(i, stages, hub) for i in range(len(KINDS))]
    for w in workers:
        w.start()
    big = 3 ** 4000
    table = {"k%d" % i: i * i for i in range(5000)}
    print("pid is main thread's tid:", pid0 == main_tid0, flush=True)
    tids0 = None
    for stage in range(1, stages + 1):
        hub.wait_all(stage)
        if tids0 is None:
            tids0 = sorted([main_tid0] + [w.tid0 for w in workers])
            print("/proc/self/task lists every thread:", tasks() == tids0,
                  flush=True)
        print("stage %d: all %d workers mid-work" % (stage, len(workers)),
              flush=True)
        sys.stderr.write("@@stage %d pid %d tids %s\n" % (
            stage, pid0, " ".join(str(w.tid0) for w in workers)))
        sys.stderr.flush()
        line = sys.stdin.readline()
        if line != "go\n":
            sys.exit("stage %d: expected go, got %r" % (stage, line))
        print("stage %d: pid kept %s, main tid kept %s, tasks kept %s" % (
            stage, os.getpid() == pid0,
            threading.get_native_id() == main_tid0,
            tasks() == tids0), flush=True)
        hub.open(stage)
    for w in workers:
        w.join()
    for w in workers:
        print("%s (%s): state %016x float %.12f stages %s tid kept %s" % (
            w.name, w.kind, w.state, w.floats,
            " ".join("%d" % w.history[s] for s in sorted(w.history)),
            w.tid_kept))
    print("big:", big % 1000000007, "table:", sum(table.values()))
    print("threads left:", threading.active_count())


main()
