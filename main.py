"""blockbench entry point: ``python main.py`` (one run) or ``python main.py -m block=vgg,mobilenet`` (a sweep)."""

import sys
import warnings

import hydra
from omegaconf import DictConfig

from blockbench.config.argv import check_arguments, quote_numeric_group_choices
from blockbench.errors import EXPLAINED_EXIT
from blockbench.sweep import callback, session

# conf/hydra/launcher/{ray,ray_cpu,submitit_slurm,submitit_local}.yaml deliberately take the place of the launcher
# plugins' configs of the same name (docs/scaling.md); Hydra validates them against the plugins' schemas and warns.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    callback.task(cfg)


if __name__ == "__main__":
    sys.argv = quote_numeric_group_choices(sys.argv)
    problem = check_arguments(sys.argv)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(EXPLAINED_EXIT)
    try:
        main()
    except SystemExit as exc:
        # Hydra reports an error of its own (a bad override, a missing config) and exits 1 before any job runs:
        # that is bad input too, so it gets bad input's exit code (docs/reliability.md: exit codes).
        if exc.code == 1 and not session.task_started():
            sys.exit(EXPLAINED_EXIT)
        raise
    sys.exit(session.exit_code())
