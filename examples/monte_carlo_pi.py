"""Monte Carlo pi as a submitted job: run it with `manta job submit` against a head.

    MANTA_ADDRESS=http://127.0.0.1:8265 manta job submit -- python -c "$(cat examples/monte_carlo_pi.py)"

``manta.init()`` with no address joins the cluster the job was submitted to. A progress
actor collects each task's count of darts, and the driver reports progress as it goes.
"""

import random
import time

import manta

TASKS = 10
SAMPLES_PER_TASK = 1_000_000


@manta.remote
class Progress:
    def __init__(self) -> None:
        self.done: dict[int, int] = {}

    def report(self, task: int, samples: int) -> None:
        self.done[task] = samples

    def fraction(self) -> float:
        return sum(self.done.values()) / (TASKS * SAMPLES_PER_TASK)


@manta.remote
def sample(task: int, progress) -> int:
    rng = random.Random(task)
    inside = 0
    for i in range(SAMPLES_PER_TASK):
        x, y = rng.random(), rng.random()
        inside += x * x + y * y <= 1.0
        if (i + 1) % 250_000 == 0:
            progress.report.remote(task, i + 1)
    return inside


manta.init()
progress = Progress.remote()
refs = [sample.remote(t, progress) for t in range(TASKS)]
while True:
    ready, _ = manta.wait(refs, num_returns=len(refs), timeout=0.5)
    print(f"Progress: {manta.get(progress.fraction.remote()):.0%}")
    if len(ready) == len(refs):
        break
    time.sleep(0.5)
inside = sum(manta.get(refs))
print(f"Estimated value of π is: {4 * inside / (TASKS * SAMPLES_PER_TASK)}")
