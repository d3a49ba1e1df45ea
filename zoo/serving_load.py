"""A serving process under load, for `python -m zoo.bench serve`: run as a script (python zoo/serving_load.py ...),
it imports TensorFlow and NumPy only, never zoo, as a server would.

Loads the export with tf.saved_model.load, then for each signature calls it from T threads at once for a fixed
time, and prints one JSON line per (signature, threads): requests/s, images/s, p50/p99 latency, errors. Then it
asks `sample` for 10**7 images (over any max_samples), times the error, and checks that the process still
answers. The last line has the peak resident memory of the process.
"""

import argparse
import json
import resource
import sys
import threading
import time

import numpy as np
import tensorflow as tf


def inputs_for(signature, batch, latent_dim, rng):
    images = rng.random((batch, 28, 28, 1)).astype(np.float32)
    made = {"images": images, "mask": (rng.random(images.shape) < 0.5).astype(np.float32),
            "latent": rng.normal(size=(batch, latent_dim or 1)).astype(np.float32), "num_samples": np.int32(batch),
            "seed": np.int32(1), "seeds": np.arange(batch, dtype=np.int32)}
    names = signature.structured_input_signature[1]
    return {name: tf.constant(made[name]) for name in names}


def load(function, inputs, threads, seconds):
    """Call function(**inputs) from `threads` threads for `seconds`; latencies (s) of the successes, error count."""
    latencies, errors, lock = [], [0], threading.Lock()
    deadline = time.perf_counter() + seconds

    def client():
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                function(**inputs)
            except Exception:  # noqa: BLE001 - counted, and the load goes on
                with lock:
                    errors[0] += 1
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies, errors[0], time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export")
    parser.add_argument("--threads", default="1,8")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--signatures", help="comma-separated; default: every one but serving_default")
    args = parser.parse_args()
    assert "zoo" not in sys.modules
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    loaded = tf.saved_model.load(args.export)
    print(json.dumps({"loaded_seconds": round(time.perf_counter() - started, 2)}), flush=True)
    signatures = loaded.signatures
    latent_dim = (signatures["decode"].structured_input_signature[1]["latent"].shape[-1]
                  if "decode" in signatures else None)
    wanted = args.signatures.split(",") if args.signatures else [
        name for name in signatures if name not in ("serving_default", "parameters")]
    for name in wanted:
        function = signatures[name]
        inputs = inputs_for(function, args.batch, latent_dim, rng)
        function(**inputs)  # the first call, untimed
        for threads in (int(t) for t in args.threads.split(",")):
            latencies, errors, elapsed = load(function, inputs, threads, args.seconds)
            ms = np.percentile(latencies, [50, 99]) * 1000 if latencies else [float("nan")] * 2
            print(json.dumps({"signature": name, "threads": threads, "batch": args.batch,
                              "requests_per_second": round(len(latencies) / elapsed, 1),
                              "images_per_second": round(len(latencies) * args.batch / elapsed, 1),
                              "p50_ms": round(float(ms[0]), 2), "p99_ms": round(float(ms[1]), 2),
                              "errors": errors}), flush=True)
    if "sample" in signatures:
        started = time.perf_counter()
        try:
            signatures["sample"](num_samples=tf.constant(10 ** 7), seed=tf.constant(0))
            outcome = "answered (no cap)"
        except tf.errors.InvalidArgumentError as error:
            outcome = "InvalidArgumentError: " + error.message.split("assertion failed: ")[-1][:80]
        seconds = time.perf_counter() - started
        still_up = signatures["sample"](num_samples=tf.constant(2), seed=tf.constant(0))["images"].shape[0] == 2
        print(json.dumps({"huge_sample": outcome, "seconds": round(seconds, 3), "still_serving": bool(still_up)}))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    print(json.dumps({"peak_memory_mib": round(peak_mib)}), flush=True)


if __name__ == "__main__":
    main()
