"""Run options: how a study trains (engine, executor, checkpoints, claims), one declarative home.

``tricklab run``, the Python API (:func:`tricklab.run_study`) and the process executor's workers
all build a :class:`RunOptions`, so each option's default and rule live here alone: the command
line's flags take their defaults from ``RunOptions()``, and a wrong value gets the same one-line
message whichever door it came in by.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, model_validator

from tricklab.base.errors import TricklabError

Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
EngineName = Literal["auto", "solo", "population"]
ExecutorName = Literal["local", "process", "ray"]
ENGINES: tuple[str, ...] = get_args(EngineName)
EXECUTORS: tuple[str, ...] = get_args(ExecutorName)

#: What the command line calls each option, and what it accepts (the message of a wrong value).
RULES: dict[str, tuple[str, str]] = {
    "engine": ("--engine", f"must be one of: {', '.join(ENGINES)}"),
    "executor": ("--executor", f"must be one of: {', '.join(EXECUTORS)}"),
    "workers": ("--workers", "must be an int >= 1"),
    "address": ("--address", "must be a Ray address (e.g. ray://head:10001 or auto)"),
    "checkpoint_every": (
        "--checkpoint-every",
        "must be a number of seconds >= 0 (0: after every epoch)",
    ),
    "lease": ("--lease", "must be a number of seconds > 0"),
    "renew": ("--renew", "must be a number of seconds > 0"),
    "wait": ("--no-wait", "must be true or false"),
    "poll": ("poll", "must be a number of seconds > 0"),
}


class RunOptions(BaseModel):
    """How the runs of a study train; every field has the command line's default.

    - ``engine``: "auto" (populations on JAX where a group has 2+ runs, else solo), "solo" or
      "population" (README, "Engines").
    - ``executor``: "local" (this process), "process" (``workers`` processes on this machine)
      or "ray" (a local Ray with ``workers`` CPUs, or the cluster at ``address``).
    - ``checkpoint_every``: seconds between mid-run checkpoints (0: every epoch).
    - ``lease``/``renew``: a claim expires ``lease`` seconds after its worker last renewed it;
      workers renew every ``renew`` seconds, so ``renew < lease``.
    - ``wait``: wait for runs that other live workers have claimed (else leave them to them);
      ``poll``: how often to look while waiting.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: EngineName = "auto"
    executor: ExecutorName = "local"
    workers: Annotated[StrictInt, Field(ge=1)] | None = None
    address: str | None = None
    checkpoint_every: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 30.0
    lease: Seconds = 60.0
    renew: Seconds = 10.0
    wait: bool = True
    poll: Seconds = 2.0

    @model_validator(mode="after")
    def _together(self) -> Self:
        """The rules between options."""
        if not self.renew < self.lease:
            raise ValueError(
                "--renew must be > 0 and less than --lease, or claims expire while their worker "
                f"lives. Received: renew={self.renew:g}, lease={self.lease:g}."
            )
        if self.workers is not None and self.executor == "local":
            raise ValueError(
                "--workers needs --executor process or ray (local trains in this process). "
                f"Received: executor='local', workers={self.workers}."
            )
        if self.address is not None and self.executor != "ray":
            raise ValueError(
                f"--address needs --executor ray. Received: executor={self.executor!r}, "
                f"address={self.address!r}."
            )
        if self.address is not None and self.workers is not None:
            raise ValueError(
                "--workers sets the CPUs of the local Ray that tricklab starts; a cluster given "
                f"with --address has its own. Received: address={self.address!r}, "
                f"workers={self.workers}."
            )
        return self

    @classmethod
    def make(cls, **options: Any) -> RunOptions:
        """The options, checked; a wrong one raises a one-line :class:`TricklabError`."""
        try:
            return cls(**options)
        except ValidationError as exc:
            raise TricklabError(_message(exc)) from None


def _message(error: ValidationError) -> str:
    item = error.errors()[0]
    if not item["loc"]:  # a rule between options: its message is whole
        return str(item["ctx"]["error"])
    name = str(item["loc"][0])
    if name not in RULES:
        return f"unknown run option {name!r}. Expected one of: {', '.join(RULES)}."
    flag, accepted = RULES[name]
    return f"{flag} {accepted}. Received: {name}={item['input']!r}."
