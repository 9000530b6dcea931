#!/usr/bin/env python3
"""Downloads the model files a build needs, as listed in workflows/models.json.

Runs inside the image build (standard library only, so it needs nothing but Python):
  * selects files by precision (fp8, fp16, gguf-<quant>) and by the variants baked into the image;
  * downloads them in parallel into <dest>/<folder>/<path>, the layout ComfyUI and the
    workflow templates expect;
  * resumes a partial download (<file>.part + HTTP Range) after a dropped connection, but only a
    .part this very manifest entry started (same repo, path, revision, size, sha256: recorded in
    <file>.part.json) and only with If-Range on the server's ETag, so a file that changed upstream
    (a moving revision such as "main") is downloaded whole again instead of being spliced;
  * retries transient failures (network errors, 429, 5xx, short reads) with exponential
    backoff and jitter; 401/403/404 fail at once because retrying cannot fix them;
  * checks the byte count and sha256 where the manifest knows them, and deletes a bad file; where
    the manifest does not know them it says so loudly and prints the sha256 it computed;
  * reads a Hugging Face token from HF_TOKEN or a BuildKit secret file, sends it only to the
    base URL's host (never across a redirect to a CDN), and never prints it;
  * exits non-zero naming every file that failed, so the image build stops loudly.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

CHUNK = 1 << 20
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(Exception):
    """A file could not be fetched or verified; `retryable` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ModelFile:
    id: str
    folder: str
    path: str
    hf_repo: str
    hf_path: str
    revision: str
    size: int | None
    sha256: str | None

    @property
    def relative(self) -> PurePosixPath:
        return PurePosixPath(self.folder) / self.path


def log(message: str) -> None:
    print(f"[models] {message}", flush=True)


def safe_relative(value: str, what: str) -> PurePosixPath:
    """Rejects absolute paths and '..' so a manifest entry cannot write outside the models dir."""
    p = PurePosixPath(value)
    if value == "" or p.is_absolute() or ".." in p.parts or "\\" in value:
        raise ValueError(f"models.json: {what} {value!r} must be a relative path without '..' or backslashes")
    return p


def load_manifest(manifest: Path) -> list[dict]:
    data = json.loads(manifest.read_text(encoding="utf-8"))
    files = data.get("files")
    if not isinstance(files, list):
        raise ValueError(f"{manifest}: expected a top-level 'files' array")
    return files


def select(entries: list[dict], precision: str, variants: list[str] | None,
           ids: list[str] | None = None) -> list[ModelFile]:
    """Files for this precision that at least one selected variant needs (variants None = all),
    limited to the given manifest ids when `ids` is set (an unknown id is an error)."""
    if ids is not None:
        unknown = sorted(set(ids) - {e.get("id") for e in entries})
        if unknown:
            raise ValueError(f"models.json has no file with id {', '.join(unknown)}")
    chosen: list[ModelFile] = []
    for e in entries:
        if ids is not None and e["id"] not in ids:
            continue
        if precision not in e.get("precisions", []):
            continue
        if variants is not None and not set(variants) & set(e.get("variants", [])):
            continue
        if "derive" in e:
            log(f"{e['id']}: made by the build from {e['derive'].get('base')} and {e['derive'].get('lora')} "
                "(builder/derive_model.py), not downloaded")
            continue
        chosen.append(model_file(e))
    return chosen


def model_file(e: dict) -> ModelFile:
    """A downloadable manifest entry, its paths and hash checked."""
    safe_relative(e["folder"], f"{e['id']}.folder")
    safe_relative(e["path"], f"{e['id']}.path")
    source = e["source"]
    sha = e.get("sha256")
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha.lower())):
        raise ValueError(f"models.json: {e['id']}.sha256 must be 64 hex digits or null")
    return ModelFile(
        id=e["id"],
        folder=e["folder"],
        path=e["path"],
        hf_repo=source["hf_repo"],
        hf_path=source["hf_path"],
        revision=source.get("revision") or "main",
        size=e.get("bytes"),
        sha256=sha.lower() if sha else None,
    )


def file_url(base_url: str, f: ModelFile) -> str:
    quote = urllib.parse.quote
    return f"{base_url.rstrip('/')}/{quote(f.hf_repo)}/resolve/{quote(f.revision, safe='')}/{quote(f.hf_path)}"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def verify(f: ModelFile, path: Path) -> None:
    size = path.stat().st_size
    if f.size is not None and size != f.size:
        raise DownloadError(f"{f.id}: got {size} bytes, manifest says {f.size}", retryable=True)
    if f.sha256 is not None:
        actual = sha256_of(path)
        if actual != f.sha256:
            raise DownloadError(f"{f.id}: sha256 {actual} does not match manifest {f.sha256}", retryable=True)


class Downloader:
    def __init__(self, base_url: str, dest: Path, token: str | None, retries: int,
                 backoff_s: float, timeout_s: float) -> None:
        self.base_url = base_url
        self.dest = dest
        self.token = token
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.token_host = urllib.parse.urlsplit(base_url).netloc

    def fetch(self, f: ModelFile) -> Path:
        target = self.dest / f.relative
        if target.exists():
            try:
                verify(f, target)  # a file left by an earlier run (cache mount) must still be right
                log(f"{f.id}: already present at {target}")
                return target
            except DownloadError as err:
                log(f"{f.id}: existing file is wrong ({err}); downloading again")
                target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        attempt = 0
        while True:
            attempt += 1
            try:
                self._download_once(f, target)
                return target
            except DownloadError as err:
                if not err.retryable or attempt > self.retries:
                    raise DownloadError(f"{err} (attempt {attempt} of {self.retries + 1})", retryable=False) from err
                delay = min(60.0, self.backoff_s * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                log(f"{f.id}: {err}; retrying in {delay:.1f}s")
                time.sleep(delay)

    def _request(self, url: str, offset: int) -> urllib.request.Request:
        req = urllib.request.Request(url, headers={"User-Agent": "steadydancer-worker-builder"})
        if offset:
            req.add_header("Range", f"bytes={offset}-")
        if self.token and urllib.parse.urlsplit(url).netloc == self.token_host:
            # Unredirected: urllib must not forward the token to the CDN host HF redirects to.
            req.add_unredirected_header("Authorization", f"Bearer {self.token}")
        return req

    def _resumable(self, f: ModelFile, part: Path, meta: Path) -> tuple[int, str | None]:
        """(bytes to keep, ETag to send as If-Range) of a .part left by an earlier attempt or run.

        A .part is kept only when its sidecar names this very manifest entry and the server's ETag;
        anything else (another revision, another expected file, no ETag, no sidecar) is deleted."""
        if not part.exists():
            meta.unlink(missing_ok=True)
            return 0, None
        try:
            recorded = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = None
        size = part.stat().st_size
        if (recorded is None or recorded.get("file") != asdict(f) or not recorded.get("etag")
                or (f.size is not None and size > f.size)):
            log(f"{f.id}: discarding {size} bytes of an earlier partial download (not this revision/entry, or no ETag to resume against)")
            part.unlink()
            meta.unlink(missing_ok=True)
            return 0, None
        return size, recorded["etag"]

    def _download_once(self, f: ModelFile, target: Path) -> None:
        part = target.with_name(target.name + ".part")
        meta = target.with_name(target.name + ".part.json")
        offset, etag = self._resumable(f, part, meta)
        url = file_url(self.base_url, f)
        started = time.monotonic()
        try:
            request = self._request(url, offset)
            if offset and etag:
                request.add_header("If-Range", etag)  # a changed file comes back whole (200), not spliced
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                if offset and resp.status != 206:
                    offset = 0  # the server ignored Range, or the file changed (If-Range): start over
                expected = resp.headers.get("Content-Length")
                meta.write_text(json.dumps({"file": asdict(f), "etag": resp.headers.get("ETag")}), encoding="utf-8")
                with part.open("ab" if offset else "wb") as out:
                    received = 0
                    while chunk := resp.read(CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                if expected is not None and received != int(expected):
                    raise DownloadError(f"{f.id}: connection closed after {received} of {expected} bytes", True)
        except urllib.error.HTTPError as err:
            if err.code == 416 and offset:
                part.unlink(missing_ok=True)  # our partial file is larger than the remote one
                meta.unlink(missing_ok=True)
                raise DownloadError(f"{f.id}: range not satisfiable, restarting from zero", True) from err
            hint = {401: "set HF_TOKEN (build secret hf_token) for gated repos",
                    403: "the token lacks access to this repo (accept its licence on Hugging Face)",
                    404: "check source.hf_repo / hf_path / revision in workflows/models.json"}.get(err.code, "")
            raise DownloadError(f"{f.id}: HTTP {err.code} for {url}" + (f" — {hint}" if hint else ""),
                                retryable=err.code in RETRYABLE_STATUS) from err
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            raise DownloadError(f"{f.id}: {err}", retryable=True) from err
        try:
            verify(f, part)
        except DownloadError:
            part.unlink(missing_ok=True)  # a wrong file is never resumed
            meta.unlink(missing_ok=True)
            raise
        part.rename(target)
        meta.unlink(missing_ok=True)
        elapsed = max(time.monotonic() - started, 1e-3)
        size = target.stat().st_size
        log(f"{f.id}: {size / 1e6:.1f} MB -> {target} ({size / 1e6 / elapsed:.1f} MB/s this attempt)")
        if f.sha256 is None:
            log(f"{f.id}: UNVERIFIED: sha256 {sha256_of(target)}, {size} bytes (not in workflows/models.json; "
                "check them against the model page and add them)")


def read_token(token_file: str | None) -> str | None:
    if os.environ.get("HF_TOKEN", "").strip():
        return os.environ["HF_TOKEN"].strip()
    if token_file and Path(token_file).is_file():
        value = Path(token_file).read_text(encoding="utf-8").strip()
        return value or None
    return None


def default_base_url() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, required=True, help="workflows/models.json")
    p.add_argument("--dest", type=Path, required=True, help="models root (ComfyUI's models/ or a volume)")
    p.add_argument("--precision", required=True, help="fp8, fp16, gguf-q5_k_m, ... (a value of files[].precisions)")
    p.add_argument("--variants", default="all", help="comma list of variants, or 'all'")
    p.add_argument("--ids", default="", help="comma list of manifest ids: only these files (one image layer's slot)")
    p.add_argument("--allow-empty", action="store_true", help="with --ids: selecting no file is not an error")
    p.add_argument("--base-url", default=default_base_url())
    p.add_argument("--token-file", default="/run/secrets/hf_token", help="file holding a HF token")
    p.add_argument("--jobs", type=int, default=4, help="parallel downloads")
    p.add_argument("--retries", type=int, default=6, help="retries per file after the first attempt")
    p.add_argument("--backoff", type=float, default=2.0, help="first retry delay in seconds (doubles)")
    p.add_argument("--timeout", type=float, default=120.0, help="socket timeout in seconds")
    p.add_argument("--list", action="store_true", help="print the selected files and exit")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    variants = None if args.variants.strip() in ("", "all") else [v.strip() for v in args.variants.split(",") if v.strip()]
    ids = [i.strip() for i in args.ids.split(",") if i.strip()] or None
    try:
        files = select(load_manifest(args.manifest), args.precision, variants, ids)
    except (ValueError, KeyError, json.JSONDecodeError) as err:
        log(f"ERROR: bad manifest: {err}")
        return 2
    if not files:
        if args.allow_empty and ids is not None:
            log(f"{', '.join(ids)}: not needed for precision {args.precision!r} and variants {args.variants!r}")
            return 0
        log(f"ERROR: no model file in {args.manifest} for precision {args.precision!r} and variants {args.variants!r}")
        return 2
    if args.list:
        for f in files:
            print(f"{f.relative}\t{file_url(args.base_url, f)}")
        return 0
    unknown = [f.id for f in files if f.sha256 is None]
    if unknown:
        banner = "!" * 100
        log(banner)
        log(f"WARNING: no sha256 in the manifest for {', '.join(unknown)}: their content is NOT verified "
            "(only the byte count, where known). The sha256 of each is printed after its download: "
            "check it against the model's page and add it to workflows/models.json.")
        log(banner)
    downloader = Downloader(args.base_url, args.dest, read_token(args.token_file), args.retries,
                            args.backoff, args.timeout)
    log(f"{len(files)} file(s), precision {args.precision}, variants {args.variants}, {args.jobs} in parallel")
    failures: list[str] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(downloader.fetch, f): f for f in files}
        for fut in concurrent.futures.as_completed(futures):
            try:
                fut.result()
            except DownloadError as err:
                failures.append(str(err))
    if failures:
        for message in failures:
            log(f"ERROR: {message}")
        log(f"ERROR: {len(failures)} of {len(files)} model file(s) failed; the image would be incomplete")
        return 1
    log(f"all {len(files)} file(s) present and verified under {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
