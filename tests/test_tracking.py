"""`harness export mlflow | tensorboard`, read back through each tracker's own reader: every exported
number is the results files' own, the seed summaries are the statistics the report prints, a second
export adds nothing, one killed midway is completed by the next, and bad input is one line. A browser
test opens MLflow's UI on a local server and finds the seeds and their mean on the chart.

MLflow, TensorBoard and Selenium come with `make setup-mlflow`; without them these tests skip, unless
HARNESS_REQUIRE_TRACKING is set (CI sets it, having installed them), which turns the skip into a failure."""

import calendar
import csv
import importlib.util
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from harness.catalogue import METRIC_NAMES, fmt
from harness.cli import main
from harness.registry import load_registry
from harness.stats import summarize
from harness.tracking import SUMMARY_FIELDS

from .conftest import ROOT


def needs(*modules):
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        if os.environ.get("HARNESS_REQUIRE_TRACKING"):
            pytest.fail(f"{', '.join(missing)} required here (HARNESS_REQUIRE_TRACKING is set) but not installed")
        pytest.skip(f"{', '.join(missing)} not installed (`make setup-mlflow`)")


def rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Real quick runs: iris-ce seeds 0-3 at 300 epochs (three logged), and one seed of iris-mse."""
    results = tmp_path_factory.mktemp("tracked") / "res"
    assert main(["run", "iris-ce", "--seeds", "0-3", "--epochs", "300", "--results-dir", str(results)]) == 0
    assert main(["run", "iris-mse", "--seeds", "0", "--epochs", "100", "--results-dir", str(results)]) == 0
    assert main(["report", "--results-dir", str(results)]) == 0
    return results


def client_for(results):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{results / 'mlflow' / 'mlflow.db'}")


def mlflow_runs(client):
    found = []
    for experiment in client.search_experiments():
        found += client.search_runs([experiment.experiment_id], max_results=1000)
    return found


@pytest.mark.slow
def test_mlflow_holds_every_figure_of_every_run_and_the_seeds_mean_the_report_prints(runs, tmp_path, capsys):
    needs("mlflow")
    results = tmp_path / "res"
    shutil.copytree(runs, results)
    assert main(["export", "mlflow", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "5 runs and 1 seed summaries of 2 experiments; 6 added, 0 already there" in out
    client = client_for(results)
    exported = {r.data.tags.get("harness.run_id"): r for r in mlflow_runs(client)}
    run_rows, epoch_rows = rows(results / "runs.csv"), rows(results / "epochs.csv")
    assert set(exported) - {None} == {r["run_id"] for r in run_rows}
    for row in run_rows:
        run = exported[row["run_id"]]
        assert run.info.status == "FINISHED" and run.info.run_name == f"seed {row['seed']} [cpu, fast, epochs={row['epochs']}]"
        lr = load_registry(ROOT / "experiments")[row["experiment"]].optimizer["init_args"]["lr"]
        assert (run.data.params["seed"], run.data.params["engine"], run.data.params["optimizer.init_args.lr"]) == (
            row["seed"], "fast", str(lr))
        assert run.data.tags["mlflow.source.git.commit"] == row["git_commit"]
        assert run.data.tags["harness.weights_sha256"] == row["weights_sha256"]
        assert run.info.start_time == calendar.timegm(time.strptime(row["started_at"], "%Y-%m-%dT%H:%M:%S+00:00")) * 1000
        for metric in METRIC_NAMES:
            logged = [(e["epoch"], e[metric]) for e in epoch_rows if e["run_id"] == row["run_id"] and e[metric] != ""]
            history = client.get_metric_history(run.info.run_id, metric)
            assert [(m.step, m.value) for m in history] == [(int(e), float(v)) for e, v in logged]  # bit for bit
        assert run.data.metrics["wall_time_s"] == float(row["wall_time_s"])
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == [f"{row['experiment']}.toml"]

    (summary,) = [r for r in exported.values() if r.data.tags.get("harness.summary_of")]
    assert summary.info.run_name == "mean ± sd over 4 seeds [cpu, fast, epochs=300]"
    assert summary.data.tags["harness.seeds"] == "0,1,2,3"
    ce = [r for r in run_rows if r["experiment"] == "iris-ce"]
    for epoch in (100, 200, 300):
        values = [float(e["train_acc"]) for e in epoch_rows if int(e["epoch"]) == epoch and e["run_id"] in {r["run_id"] for r in ce}]
        stats = summarize(values)
        for suffix, _, compute in SUMMARY_FIELDS:
            (point,) = [m for m in client.get_metric_history(summary.info.run_id, "train_acc" + suffix) if m.step == epoch]
            assert point.value == compute(stats, np.asarray(values))
    # At the last epoch, the mean ± sd the report prints for these seeds.
    final = summarize([float(r["train_acc"]) for r in ce])
    assert f"{fmt('train_acc', final.mean)} ± {fmt('train_acc', final.std)}" in (results / "REPORT.md").read_text()
    assert summary.data.metrics["train_acc"] == final.mean and summary.data.metrics["train_acc/sd"] == final.std
    assert {a.path for a in client.list_artifacts(summary.info.run_id)} == {"curves-iris-ce.png"}

    # A second export adds nothing.
    assert main(["export", "mlflow", "--results-dir", str(results)]) == 0
    assert "6 runs" not in (again := capsys.readouterr().out) and "0 added, 6 already there" in again
    assert len(mlflow_runs(client)) == 6
    # A new seed adds its run and replaces the summary, now over five seeds.
    assert main(["run", "iris-ce", "--seeds", "4", "--epochs", "300", "--results-dir", str(results)]) == 0
    assert main(["export", "mlflow", "--results-dir", str(results)]) == 0
    assert "2 added, 5 already there" in capsys.readouterr().out
    names = sorted(r.info.run_name for r in mlflow_runs(client))
    assert names.count("mean ± sd over 5 seeds [cpu, fast, epochs=300]") == 1 and len(names) == 7


@pytest.mark.slow
def test_rows_check_refuses_are_not_exported_and_counted(runs, tmp_path, capsys):
    needs("mlflow")
    results = tmp_path / "res"
    shutil.copytree(runs, results)
    text = (results / "runs.csv").read_text()
    first = text.splitlines()[1]
    (results / "runs.csv").write_text(text.replace(first, first.replace(",ok,", ",finished,"), 1))  # a hand edit
    assert main(["export", "mlflow", "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    assert "4 runs and 1 seed summaries" in out and "not exported: 1 refused by `harness check`" in out
    assert first.split(",")[0] not in {r.data.tags.get("harness.run_id") for r in mlflow_runs(client_for(results))}


@pytest.mark.slow
def test_an_export_killed_midway_is_completed_by_the_next(tmp_path):
    needs("mlflow")
    results = tmp_path / "res"
    assert main(["run", "iris-mse", "--seeds", "0-39", "--epochs", "100", "--results-dir", str(results)]) == 0
    export = [sys.executable, "-m", "harness", "export", "mlflow", "--results-dir", str(results)]
    process = subprocess.Popen(export, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    database, begun = results / "mlflow" / "mlflow.db", 0
    deadline = time.monotonic() + 300
    while not begun and process.poll() is None and time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
                begun = db.execute("select count(*) from runs where status = 'FINISHED'").fetchone()[0]
        except sqlite3.Error:
            pass  # not created yet, or being written
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert begun, "the export ended before it could be interrupted"
    client = client_for(results)
    assert len(mlflow_runs(client)) < 41  # interrupted: not every run and the summary there

    assert subprocess.run(export, cwd=ROOT, capture_output=True).returncode == 0
    found = mlflow_runs(client)
    ids = [r.data.tags.get("harness.run_id") or r.data.tags["harness.summary_of"] for r in found]
    assert len(found) == 41 and len(set(ids)) == 41  # every run once, the summary once
    assert {r.info.status for r in found} == {"FINISHED"}
    for run in found:
        if run.data.tags.get("harness.run_id"):
            assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [100]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_bad_input_is_one_line(runs, tmp_path, capsys):
    needs("mlflow")
    for args, message in (
        (["--tracking-uri", "ftp://example.org/x"], "use sqlite:///PATH (a local store) or http(s)://HOST:PORT"),
        (["--tracking-uri", f"http://127.0.0.1:{free_port()}"], "no MLflow server answers there"),
        (["--tracking-uri", f"sqlite:///{tmp_path / 'absent' / 'm.db'}"], "of its database does not exist; create it"),
        (["--logdir", str(tmp_path)], "--logdir is for `export tensorboard`"),
    ):
        assert main(["export", "mlflow", "--results-dir", str(runs), *args]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert main(["export", "mlflow", "--results-dir", str(tmp_path / "none")]) == 2
    assert "no such directory" in capsys.readouterr().err
    # Without MLflow: the command that installs it.
    hidden = "import sys; sys.modules['mlflow'] = None; from harness.cli import main; sys.exit(main(sys.argv[1:]))"
    shutil.copytree(runs, tmp_path / "r")
    done = subprocess.run([sys.executable, "-c", hidden, "export", "mlflow", "--results-dir", str(tmp_path / "r")], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "MLflow is not installed; `make setup-mlflow`" in done.stderr
    assert not (tmp_path / "r" / "mlflow" / "mlflow.db").exists()


@pytest.mark.slow
def test_a_sqlite_store_of_the_users_keeps_its_artifacts_beside_its_database(runs, tmp_path, capsys, monkeypatch):
    """Not in `./mlruns` of whatever folder the command ran from (MLflow's default): in `artifacts/` beside the
    database named by --tracking-uri, a folder per experiment, the recipe file of each run in it."""
    needs("mlflow")
    (tmp_path / "store").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    url = "sqlite:///../store/runs.db"  # relative, as a user types it
    assert main(["export", "mlflow", "--results-dir", str(runs), "--tracking-uri", url]) == 0
    assert "artifacts of new experiments in ../store/artifacts" in capsys.readouterr().out
    assert list((tmp_path / "elsewhere").iterdir()) == []
    for experiment, seeds in (("iris-ce", 4), ("iris-mse", 1)):
        assert len(list((tmp_path / "store" / "artifacts" / experiment).glob(f"*/artifacts/{experiment}.toml"))) == seeds


@pytest.mark.parametrize("target,folder", [("mlflow", "mlflow"), ("mlflow", "mlflow/artifacts"), ("tensorboard", "tensorboard")])
def test_a_store_folder_linked_elsewhere_is_refused_and_its_target_untouched(runs, tmp_path, capsys, target, folder):
    needs(target)
    results, outside = tmp_path / "res", tmp_path / "outside"
    shutil.copytree(runs, results)
    outside.mkdir()
    (results / folder).parent.mkdir(parents=True, exist_ok=True)
    (results / folder).symlink_to(outside)
    assert main(["export", target, "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert f"{results / folder}: is a symbolic link" in err and len(err.strip().splitlines()) == 1, err
    assert list(outside.iterdir()) == []


def test_tensorboard_holds_every_figure_with_the_runs_settings_and_resumes(runs, tmp_path, capsys):
    needs("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results, logdir = tmp_path / "res", tmp_path / "tb"
    shutil.copytree(runs, results)
    # An interrupted export's partial directory is replaced, never taken for a run.
    partial = logdir / "iris-ce" / "cpu-fast-epochs=300" / "seed-0.partial"
    partial.mkdir(parents=True)
    (partial / "events.out.tfevents.0.stale").write_text("")
    assert main(["export", "tensorboard", "--results-dir", str(results), "--logdir", str(logdir)]) == 0
    assert "5 runs and 1 seed summaries; 6 written, 0 already there" in capsys.readouterr().out
    assert not partial.exists()
    epoch_rows = rows(results / "epochs.csv")
    for row in rows(results / "runs.csv"):
        group = f"cpu-fast-epochs={row['epochs']}"
        events = EventAccumulator(str(logdir / row["experiment"] / group / f"seed-{row['seed']}"))
        events.Reload()
        for metric in METRIC_NAMES:
            logged = [(int(e["epoch"]), float(e[metric])) for e in epoch_rows if e["run_id"] == row["run_id"] and e[metric] != ""]
            if logged:  # TensorBoard keeps scalars as float32
                assert [(s.step, s.value) for s in events.Scalars(metric)] == [(e, float(np.float32(v))) for e, v in logged]
        assert events.PluginTagToContent("hparams")  # the run's settings, in the run beside its scalars
    summary = EventAccumulator(str(logdir / "iris-ce" / "cpu-fast-epochs=300" / "mean-over-seeds"))
    summary.Reload()
    finals = summarize([float(r["train_acc"]) for r in rows(results / "runs.csv") if r["experiment"] == "iris-ce"])
    assert summary.Scalars("train_acc")[-1].value == float(np.float32(finals.mean))
    assert summary.Scalars("train_acc/sd")[-1].value == float(np.float32(finals.std))
    assert main(["export", "tensorboard", "--results-dir", str(results), "--logdir", str(logdir)]) == 0
    assert "0 written, 6 already there" in capsys.readouterr().out


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.mark.slow
def test_mlflow_ui_charts_the_seeds_and_their_mean(runs, tmp_path):
    """A real browser on a real server: the runs exported to it over HTTP, MLflow's chart view of iris-ce
    shows the four seeds' runs and the summary run's mean series. A screenshot goes to build/."""
    needs("mlflow", "selenium")
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("HARNESS_REQUIRE_TRACKING"):
            pytest.fail("chromium and chromedriver are required here (HARNESS_REQUIRE_TRACKING is set)")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(flag)
    browser = None
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/health", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        # Exported to the server as to a team's: over HTTP, the artifacts uploaded.
        assert main(["export", "mlflow", "--results-dir", str(runs), "--tracking-uri", url]) == 0
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=url)
        experiment = client.get_experiment_by_name("iris-ce").experiment_id
        assert len(client.search_runs([experiment])) == 5
        assert not (runs / "mlflow").exists()  # nothing written beside the results
        browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        browser.get(f"{url}/#/experiments/{experiment}/runs?compareRunsMode=CHART")
        wait = WebDriverWait(browser, 90)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "g.trace, path.js-line"))
        wait.until(lambda b: "mean ± sd over 4 seeds" in b.page_source)
        page = browser.page_source
        assert all(f"seed {s} [cpu, fast, epochs=300]" in page for s in range(4))
        # The screenshot shows the headline metric's charts: the seeds with their mean, and the spread.
        search = browser.find_element(By.CSS_SELECTOR, "input[placeholder='Search metric charts']")
        search.send_keys("^train_acc$")
        time.sleep(2)
        (ROOT / "build").mkdir(exist_ok=True)
        browser.save_screenshot(str(ROOT / "build" / "mlflow-chart.png"))
    finally:
        if browser is not None:
            browser.quit()
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
