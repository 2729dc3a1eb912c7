"""Benchmark: Gaussian-mixture EM fit time, genjax (jitted JAX) vs scikit-learn.

Both fit the same synthetic data from the same initial weights, means and precisions (genjax's
k-means++ initialization, handed to scikit-learn as ``weights_init``/``means_init``/
``precisions_init``) for exactly ``--iters`` EM iterations (``tol = 0``), with the same
``reg_covar``. genjax runs in float32 on the default JAX device; its compile time is reported
apart and the fit time is the median of ``--repeats`` compiled runs. scikit-learn runs on the
CPU in float64 (its usual precision) and, with ``--sklearn-float32``, also in float32; its
time includes a negligible ``random_from_data`` initialization that the given parameters then
override; ``--sklearn-threads`` caps its BLAS threads (threaded BLAS on small matrices can
thrash on a busy machine). Final mean log-likelihoods (nats per example) are printed to show both did the same
work. Prints a table and writes JSON.

    python benchmarks/bench_gmm.py --out /tmp/bench_gmm.json
    python benchmarks/bench_gmm.py --n 200000 --d 16 --k 16 --iters 20 --types full diag
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from threadpoolctl import threadpool_limits

from genjax.classical.gmm import (
    COVARIANCE_TYPES,
    fit_gmm,
    init_from_centres,
    kmeans_plus_plus,
)


def synthetic_data(n: int, d: int, k: int, seed: int) -> np.ndarray:
    """``n`` points from a random mixture of ``k`` anisotropic Gaussians in ``d`` dimensions."""
    rng = np.random.default_rng(seed)
    comp = rng.choice(k, size=n, p=rng.dirichlet(np.full(k, 5.0)))
    means = rng.normal(scale=4.0, size=(k, d))
    scales = rng.normal(size=(k, d, d)) / np.sqrt(d) + np.eye(d)
    z = rng.normal(size=(n, d))
    return (means[comp] + np.einsum("nde,ne->nd", scales[comp], z)).astype(np.float32)


def bench_genjax(x, p0, k, covariance_type, iters, reg_covar, repeats):
    xj = jnp.asarray(x)
    kw = {
        "covariance_type": covariance_type,
        "init": p0,
        "max_iters": iters,
        "tol": 0.0,
        "reg_covar": reg_covar,
    }
    start = time.perf_counter()
    params, hist = fit_gmm(None, xj, k, **kw)
    jax.block_until_ready(params)
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        params, hist = fit_gmm(None, xj, k, **kw)
        jax.block_until_ready(params)
        times.append(time.perf_counter() - start)
    fit = statistics.median(times)
    return {
        "seconds": fit,
        "compile_seconds": max(first - fit, 0.0),
        "final_log_likelihood": hist["final_log_likelihood"],
        "iterations": hist["n_iter"],
    }


def bench_sklearn(x, p0, covariance_type, iters, reg_covar, dtype, threads=None):
    cov = np.asarray(p0.covariances, np.float64)
    prec = np.linalg.inv(cov) if covariance_type == "full" else 1.0 / cov
    w = np.asarray(p0.weights, np.float64)
    sk = SkGaussianMixture(
        len(w),
        covariance_type=covariance_type,
        tol=0.0,
        max_iter=iters,
        reg_covar=reg_covar,
        init_params="random_from_data",
        weights_init=w / w.sum(),
        means_init=np.asarray(p0.means, np.float64),
        precisions_init=prec,
        random_state=0,
    )
    xs = x.astype(dtype)
    start = time.perf_counter()
    with threadpool_limits(limits=threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol = 0 runs every iteration
        sk.fit(xs)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "final_log_likelihood": float(sk.score(xs)),
        "iterations": int(sk.n_iter_),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--types", nargs="+", default=list(COVARIANCE_TYPES), choices=COVARIANCE_TYPES)
    ap.add_argument("--reg-covar", type=float, default=1e-6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sklearn-float32", action="store_true")
    ap.add_argument("--sklearn-threads", type=int, default=None, help="BLAS threads (default: all)")
    ap.add_argument("--out", default="bench_gmm.json")
    args = ap.parse_args(argv)

    x = synthetic_data(args.n, args.d, args.k, args.seed)
    device = jax.devices()[0]
    info = {
        "jax_device": device.device_kind,
        "jax_platform": device.platform,
        "jax_version": jax.__version__,
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "n": args.n,
        "d": args.d,
        "k": args.k,
        "iters": args.iters,
        "reg_covar": args.reg_covar,
        "repeats": args.repeats,
        "sklearn_threads": args.sklearn_threads,
    }
    print(
        f"GMM EM, N={args.n} D={args.d} K={args.k}, {args.iters} iterations; genjax on "
        f"{device.device_kind} ({device.platform}), scikit-learn on {os.cpu_count()} CPU cores"
    )
    header = (
        f"{'covariance':<10} {'impl':<16} {'seconds':>8} {'s/iter':>8} {'speedup':>8} "
        f"{'compile s':>9} {'mean LL (nats)':>15}"
    )
    print(header + "\n" + "-" * len(header))
    rows = []
    for ct in args.types:
        xj = jnp.asarray(x)
        p0 = init_from_centres(
            xj, kmeans_plus_plus(jax.random.key(args.seed), xj, args.k)[0], ct, args.reg_covar
        )
        results = {
            "genjax float32": bench_genjax(
                x, p0, args.k, ct, args.iters, args.reg_covar, args.repeats
            ),
            "sklearn float64": bench_sklearn(
                x, p0, ct, args.iters, args.reg_covar, np.float64, args.sklearn_threads
            ),
        }
        if args.sklearn_float32:
            results["sklearn float32"] = bench_sklearn(
                x, p0, ct, args.iters, args.reg_covar, np.float32, args.sklearn_threads
            )
        base = results["sklearn float64"]["seconds"]
        for impl, r in results.items():
            r.update(
                covariance_type=ct,
                impl=impl,
                seconds_per_iter=r["seconds"] / args.iters,
                speedup_vs_sklearn_float64=base / r["seconds"],
            )
            rows.append(r)
            comp = f"{r['compile_seconds']:9.2f}" if "compile_seconds" in r else f"{'':>9}"
            print(
                f"{ct:<10} {impl:<16} {r['seconds']:8.3f} {r['seconds_per_iter']:8.4f} "
                f"{r['speedup_vs_sklearn_float64']:7.1f}x {comp} "
                f"{r['final_log_likelihood']:15.6f}"
            )
    with open(args.out, "w") as f:
        json.dump({"info": info, "results": rows}, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
