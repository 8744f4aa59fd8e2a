"""blockbench entry point: ``python main.py`` (one run) or ``python main.py -m block=vgg,mobilenet`` (a sweep)."""

import sys
import warnings

import hydra
from omegaconf import DictConfig

from blockbench import sweep
from blockbench.cli import quote_numeric_group_choices

# conf/hydra/launcher/{ray,ray_cpu,submitit_slurm,submitit_local}.yaml deliberately take the place of the launcher
# plugins' configs of the same name (docs/scaling.md); Hydra validates them against the plugins' schemas and warns.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    sweep.task(cfg)


if __name__ == "__main__":
    sys.argv = quote_numeric_group_choices(sys.argv)
    main()
    sys.exit(sweep.exit_code())
