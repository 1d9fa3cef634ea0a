"""The Dagster code location: every definition found under defs/, run in-process (one DuckDB writer)."""

import logging
from pathlib import Path

import dagster as dg
from dagster._utils.log import create_console_logger

STACK_TRACE = "\n\nStack Trace:"


class _WithoutStackTraces(logging.Filter):
    """A failed step's console line keeps its error and drops the Dagster/Python stack trace, which the run's
    event log in the Dagster UI keeps: on the console (`clv materialize`, a run's stderr) the error is what
    people read, and a page of frames above it hid it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if STACK_TRACE in message:
            record.msg, record.args = message.split(STACK_TRACE)[0] + "\n(stack trace: the run in the Dagster UI)", None
        return True


@dg.logger(
    {"log_level": dg.Field(str, is_required=False, default_value="INFO"),
     "name": dg.Field(str, is_required=False, default_value="dagster")},
    description="Dagster's colored console logger, with failures shown without their stack trace.",
)
def console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = create_console_logger(init_context.logger_config["name"], init_context.logger_config["log_level"])
    for handler in logger.handlers:
        handler.addFilter(_WithoutStackTraces())
    return logger


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(project_root=Path(__file__).parent.parent),
        dg.Definitions(executor=dg.in_process_executor, loggers={"console": console_logger}),
    )
