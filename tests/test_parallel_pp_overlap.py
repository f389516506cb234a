"""Pipeline-send overlap (Training.pp_overlap, Megatron-Core's --overlap-p2p-communication): the sends of the
interleaved schedule hide behind the next chunk's compute, up to its time; without interleaving nothing changes
(Megatron-LM turns the option off there, megatron/training/arguments.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from llmcalc.core import parallel as par
from llmcalc.presets import load_gpu, load_model

PARTS = ("compute_seconds", "tp_comm_exposed_seconds", "cp_comm_exposed_seconds", "ep_comm_exposed_seconds",
         "bubble_seconds", "pp_comm_exposed_seconds", "dp_comm_exposed_seconds")


def _pair(cluster=None, **layout):
    spec, gpu = load_model("llama-3.1-70b"), load_gpu("h100-sxm")
    cl = cluster or par.Cluster.from_gpu(gpu)
    run = par.Training(seq=4096, global_batch=256)
    off = par.evaluate(spec, gpu, cl, run, **layout)
    on = par.evaluate(spec, gpu, cl, dataclasses.replace(run, pp_overlap=True), **layout)
    return off, on


def _v(r, k):
    return np.asarray(r[k].value, dtype=float)


LAYOUTS = dict(dp=np.array([2, 2, 2, 1]), tp=np.array([8, 8, 8, 8]), pp=np.array([4, 4, 4, 8]),
               micro_batch=np.array([1, 1, 1, 1]), virtual=np.array([1, 2, 5, 10]), zero=1, sp=True)


def test_sends_hide_behind_compute_only_when_interleaved():
    off, on = _pair(**LAYOUTS)
    v = LAYOUTS["virtual"]
    sends, compute = _v(on, "pp_comm_seconds"), _v(on, "compute_seconds")
    assert (sends > 0).all() and (sends == _v(off, "pp_comm_seconds")).all()
    assert (_v(off, "pp_comm_exposed_seconds") == sends).all()                  # off: every send on the step
    expect = np.where(v > 1, np.maximum(sends - compute, 0), sends)
    assert _v(on, "pp_comm_exposed_seconds") == pytest.approx(expect)
    assert (_v(on, "pp_comm_exposed_seconds")[v > 1] == 0).all()                # here compute dwarfs the sends
    gain = _v(off, "step_seconds") - _v(on, "step_seconds")
    assert gain == pytest.approx(sends - expect)                                # the step loses what is hidden
    assert gain[v == 1] == pytest.approx(0)


def test_never_slower_and_the_step_still_adds_up():
    off, on = _pair(**LAYOUTS)
    assert (_v(on, "step_seconds") <= _v(off, "step_seconds")).all()
    for r in (off, on):
        assert _v(r, "step_seconds") == pytest.approx(sum(_v(r, k) for k in PARTS))


def test_sends_longer_than_the_compute_stay_exposed_by_the_difference():
    # A 10 MB/s network between nodes: stage-to-stage sends (pp 8 at dp·tp = 8, one node per stage) outlast the
    # compute, and only the compute's length of them hides.
    gpu = load_gpu("h100-sxm")
    slow = par.Cluster.from_gpu(gpu, net_bw=1e7)
    off, on = _pair(cluster=slow, dp=1, tp=8, pp=8, micro_batch=1, virtual=2, zero=1, sp=True)
    sends, compute = _v(on, "pp_comm_seconds"), _v(on, "compute_seconds")
    assert sends > compute
    assert _v(on, "pp_comm_exposed_seconds") == pytest.approx(sends - compute)
    assert _v(off, "step_seconds") - _v(on, "step_seconds") == pytest.approx(compute)


def test_the_cli_flag_reaches_the_core_and_is_echoed(cli):
    base = ["parallel", "-m", "llama-3.1-70b", "-g", "h100-sxm", "--gpus", "64", "--tp", "8", "--pp", "4",
            "--virtual-stages", "5", "--global-batch", "512", "--seq", "4096", "--json"]
    off, on = cli(*base).json(), cli(*base, "--pp-overlap").json()
    assert off["inputs"]["pp_overlap"] is False and on["inputs"]["pp_overlap"] is True
    sends = off["results"]["pp_comm_seconds"]
    assert sends > 0 and off["results"]["pp_comm_exposed_seconds"] == sends
    assert on["results"]["pp_comm_exposed_seconds"] < sends
    assert on["results"]["step_seconds"] == pytest.approx(
        off["results"]["step_seconds"] - (sends - on["results"]["pp_comm_exposed_seconds"]), rel=1e-9)
