"""A scratch virtual environment holding providerhub, Gravityengine and 100 generated plugin
distributions, for the cold-start figures "with 100 plugins installed".

providerhub and Gravityengine are built into wheels from the work tree (no build isolation:
the dev environment has hatchling) and installed, not editable, with the same versions of
``requests``, ``urllib3``, ``pluggy`` and the rest as the environment running the bench.
Each generated plugin is what installing its wheel leaves behind: a module and a
``*.dist-info`` with ``METADATA``, ``WHEEL``, ``RECORD`` and an ``entry_points.txt`` in the
``providerhub`` group. Half of them are plain provider modules, half are hook plugins
(``register_providers``), as real plugins are; each imports providerhub's OpenAI-compatible
helper and serves 10 models.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINNED = ["requests", "urllib3", "idna", "charset-normalizer", "certifi", "pluggy"]

PLAIN_TEMPLATE = '''"""Generated benchmark provider {n}: a plain provider module."""

from providerhub._http.chat import chat_completion

url = "http://127.0.0.1:9/{name}"
model = [{models}]
supports_stream = True
needs_auth = False
working = True


def _create_completion(model, messages, stream, **kwargs):
    yield from chat_completion(
        "{name}", url + "/v1/chat/completions", model, messages, stream, **kwargs
    )
'''

HOOK_TEMPLATE = '''"""Generated benchmark provider {n}: a hook plugin registering itself."""

import sys

from providerhub import hookimpl
from providerhub._http.chat import chat_completion

url = "http://127.0.0.1:9/{name}"
model = [{models}]
supports_stream = True
needs_auth = False
working = True


def _create_completion(model, messages, stream, **kwargs):
    yield from chat_completion(
        "{name}", url + "/v1/chat/completions", model, messages, stream, **kwargs
    )


@hookimpl
def register_providers(register):
    register(sys.modules[__name__], name="{name}")
'''


@dataclass(frozen=True)
class ScratchEnv:
    """The scratch environment: its interpreter, its ``providerhub`` script and its
    ``site-packages``."""

    root: Path
    python: Path
    script: Path
    site_packages: Path
    plugins: int


def _run(args: list[str], what: str, timeout: float = 600) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{what} failed: " + " | ".join(tail))
    return done.stdout


def _pins() -> list[str]:
    """The running environment's versions of providerhub's dependencies, as pins."""
    pins = [f"{name}=={metadata.version(name)}" for name in PINNED]
    try:
        pins.append(f"typing-extensions=={metadata.version('typing-extensions')}")
    except metadata.PackageNotFoundError:
        pass
    return pins


def _build_wheels(wheels: Path) -> list[Path]:
    base = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels)]
    projects = [str(ROOT), str(ROOT / "plugins" / "gravityengine")]
    try:
        _run([*base, "--no-build-isolation", *projects], "building the wheels")
    except RuntimeError:
        _run([*base, *projects], "building the wheels (with build isolation)")
    return sorted(wheels.glob("*.whl"))


def write_plugin(site_packages: Path, n: int, models: int = 10) -> None:
    """Write generated plugin ``n`` into ``site_packages`` as installing its wheel would."""
    name = f"bench_plugin_{n:03d}"
    dist = f"bench-plugin-{n:03d}"
    version = "1.0.0"
    model_list = ", ".join(f'"{name}-model-{j}"' for j in range(models))
    template = HOOK_TEMPLATE if n % 2 else PLAIN_TEMPLATE
    package = site_packages / name
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(template.format(n=n, name=name, models=model_list))
    info = site_packages / f"{name}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    files = {
        "METADATA": (
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
            f"Summary: Generated providerhub plugin {n}\nRequires-Dist: providerhub\n"
        ),
        "WHEEL": (
            "Wheel-Version: 1.0\nGenerator: providerhub-bench\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
        "entry_points.txt": f"[providerhub]\n{name} = {name}\n",
        "top_level.txt": f"{name}\n",
        "INSTALLER": "pip\n",
    }
    for filename, text in files.items():
        (info / filename).write_text(text)
    record = [f"{name}/__init__.py,,", *(f"{info.name}/{f},," for f in files)]
    record.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


def create(root: Path, plugins: int = 100) -> ScratchEnv:
    """Build the scratch environment under ``root`` (which should be empty), and check
    that its hub loads every plugin."""
    root.mkdir(parents=True, exist_ok=True)
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    wheels = _build_wheels(root / "wheels")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    _run(
        [*install, "--no-warn-script-location", *map(str, wheels), *_pins()],
        "installing into the scratch environment",
    )
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            "finding site-packages",
        ).strip()
    )
    for n in range(plugins):
        write_plugin(site, n)
    check = _run(
        [
            str(python),
            "-c",
            "import providerhub; h = providerhub.Hub(); "
            "print(len(h.providers), len(h.plugin_errors), [str(e) for e in h.plugin_errors])",
        ],
        "loading the scratch hub",
    ).split(" ", 2)
    if int(check[0]) != plugins + 1 or int(check[1]) != 0:
        raise RuntimeError(f"the scratch hub has {check[0]} providers and errors {check[2]}")
    return ScratchEnv(root, python, env_dir / "bin" / "providerhub", site, plugins)
