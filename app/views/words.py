"""Words for a practice manager: what went wrong in a sentence, what to do about it, and steps
named by their titles (never an error type's class-like name or a node id in the app)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from app.api.records import RecordRow
from app.workflow import Problem, Workflow, type_title

from .display import local_time

EMAIL: Final = ("email server", "Settings → Integrations → Email")
SMS: Final = ("SMS gateway", "Settings → Integrations → SMS gateway")


@dataclass(frozen=True)
class ErrorWords:
    sentence: str   # what happened
    fix: str        # what to do next ("" when there is nothing to do)

    @property
    def text(self) -> str:
        return f"{self.sentence} {self.fix}".strip()


# {service} / {where}: the email server or the SMS gateway, and where it is set up.
_ERRORS: Final[dict[str, tuple[str, str]]] = {
    "ConnectionRefused": ("The {service} refused the connection.", "Check {where}, then Retry Step."),
    "Timeout": ("The {service} did not answer in time.",
                "Check that it is running and can be reached from here ({where}), then Retry Step."),
    "NotConnected": ("The {service} is not set up for Clinicflow.",
                     "Set it up in {where} and press Test, then Retry Step."),
    "AuthenticationFailed": ("The email server did not accept the user name or password.",
                             "Correct them in Settings → Integrations → Email, then Retry Step."),
    "ServerError": ("The {service} could not send the message just now.",
                    "Retry Step in a few minutes; if it keeps failing, ask your provider."),
    "GatewayError": ("The SMS gateway could not send the message just now.",
                     "Retry Step in a few minutes; if it keeps failing, ask your provider."),
    "GatewayRejected": ("The SMS gateway refused the message.",
                        "Check the token and sender in Settings → Integrations → SMS gateway, then Retry Step."),
    "RecipientRejected": ("The address the message was to go to is not a valid one.",
                          "Correct the address in Records, then Retry Step."),
    "InvalidAddress": ("The address the message was to go to is not a valid one.",
                       "Correct the address in Records (or the node's To field in the editor), then Retry Step."),
    "MissingAddress": ("The patient has no address for this message.",
                       "Add the email address or mobile number in Records, then Retry Step."),
    "RecordMissing": ("The record this run was about no longer exists.",
                      "There is nothing to retry: start the workflow again for another record."),
    "NoSuchRecord": ("This run has no record of the kind the step changes.",
                     "Change the step in the editor and publish, then start the workflow again."),
    "TemplateError": ("A text in the workflow could not be filled in.",
                      "Fix the text in the editor and publish, then Retry Run."),
    "InvalidRecord": ("The record could not be saved with these values.",
                      "Fix the step's settings in the editor or the record in Records, then Retry Step."),
    "InvalidWaitTime": ("The wait has no date or time to wait until.",
                        "Fill in the date in the record, or change the wait in the editor, then Retry Step."),
    "DeliveryUncertain": ("It is not known whether the message went out (Clinicflow stopped while sending).",
                          "Check your sent messages before you Retry Step: retrying may send it twice."),
    "DatabaseError": ("The database could not be read while sending; nothing was sent.", "Retry Step."),
    "InternalError": ("Something went wrong inside Clinicflow.",
                      "Retry Step; if it fails again, send the Error details to your IT contact."),
    "UnknownNode": ("This version of Clinicflow cannot run one of the workflow's steps.",
                    "Update Clinicflow on the computers that run workflows, then Retry Step."),
    "Cancelled": ("The run was cancelled.", ""),
}

# The safety limits (DESIGN section 6): the runtime's message carries the number and whether it
# was the workflow's own limit ("Max actions per run (25) reached (the workflow's own limit): …");
# the words say which setting to change where, and which retry then goes on.
_LIMIT_NUMBER: Final = re.compile(r"\((\d+(?: \w+)?)\)")
_OWN_LIMIT: Final = "(the workflow's own limit)"
SETTINGS_LIMITS: Final = "Settings → Safety limits"
WORKFLOW_LIMITS: Final = "the workflow's properties in the Editor"
_LIMITS: Final[dict[str, tuple[str, str, str, str]]] = {
    # error type: (sentence with {n}, sentence without a number, setting's label, retry after a change in Settings)
    "MaxActionsReached": ("This run reached the limit of {n} per run.",
                          "This run reached the limit on actions per run.", "Max actions per run", "Retry Step"),
    "MaxRuntimeExceeded": ("This run went on longer than the limit of {n} per run.",
                           "This run went on longer than the limit on a run's runtime.", "Max runtime of a run",
                           "Retry Step (the time counts again from the retry)"),
    "DailyLimitReached": ("This workflow has handed over the most messages it may send in a day ({n}).",
                          "This workflow has handed over the most messages it may send in a day.",
                          "Max messages per day", "Retry Step"),
}
# What the number in a message counts ("Max actions per run (25)": 25 actions).
_LIMIT_UNITS: Final = {"MaxActionsReached": ("action", "actions")}
# Errors whose fix is a change in the editor: the run goes on once a fixed version is published
# (Retry on latest); until then the run viewer says a fixed version must be published first.
FIXED_IN_A_NEW_VERSION: Final = frozenset({"TemplateError", "NoSuchRecord", "UnknownNode"})


def is_limit(error_type: str | None) -> bool:
    """The run was stopped by one of the safety limits."""
    return error_type in _LIMITS or error_type == "LoopStopped"


def needs_new_version(error_type: str | None, message: str | None) -> bool:
    """Whether the fix is a new version of the workflow (publish, then Retry on latest)."""
    if error_type in FIXED_IN_A_NEW_VERSION:
        return True
    return error_type in _LIMITS and _OWN_LIMIT in (message or "")


def retry_repeats_it(error_type: str | None, message: str | None) -> bool:
    """Retry Step/Run on the same version can only stop again: the workflow sets the limit itself."""
    return error_type in _LIMITS and error_type != "DailyLimitReached" and _OWN_LIMIT in (message or "")


def _limit_words(error_type: str, message: str | None) -> ErrorWords:
    with_number, without, label, retry = _LIMITS[error_type]
    found = _LIMIT_NUMBER.search(message or "")
    if found is None:
        sentence = without
    else:
        number = found.group(1)
        units = _LIMIT_UNITS.get(error_type)
        if units is not None and number.isdigit():
            number = f"{int(number):,} {units[0] if int(number) == 1 else units[1]}"
        sentence = with_number.format(n=number)
    if error_type == "DailyLimitReached":
        return ErrorWords(sentence, f"Retry Step tomorrow (the count starts again at midnight), or raise "
                                    f"“{label}” for the practice or this workflow, then Retry Step.")
    if _OWN_LIMIT in (message or ""):
        # Settings would not help: the workflow's version sets the limit itself.
        return ErrorWords(sentence, f"This workflow sets its own limit: raise “{label}” in {WORKFLOW_LIMITS}, "
                                    "publish, then Retry on latest.")
    return ErrorWords(sentence, f"Raise “{label}” in {SETTINGS_LIMITS}, then {retry}; or raise it for this "
                                f"workflow only in {WORKFLOW_LIMITS}, publish, then Retry on latest.")


_CHAIN: Final = re.compile(r"number (\d+) in a chain .*\(max chain depth (\d+)\): (.*)$")


def _loop_words(message: str | None) -> ErrorWords:
    found = _CHAIN.search(message or "")
    if found is None:
        sentence = "This run was stopped before it began: workflows were starting one another in a chain."
    else:
        names = " → ".join(f"“{name}”" for name in found.group(3).split(" -> "))
        sentence = (f"This run was stopped before it began: it would have been run {found.group(1)} in a chain "
                    f"of workflows starting one another ({names}); at most {found.group(2)} may follow one another.")
    return ErrorWords(sentence, "If the workflows start one another by mistake, change one of them and publish. "
                                "If the chain is meant, Retry Run starts this run anyway.")


# Command-line advice inside the runtime's messages ("(clinicflow integration set smtp from=...)",
# "(set security=none or ssl)"): the app gives its own advice, so these are left out.
_CLI_ADVICE: Final = re.compile(r";?\s*(?:note: )?\((?:clinicflow |set |see clinicflow )[^)]*\)|"
                                r";\s*note: no from address is set yet")


# A safety limit's runtime message ("Max actions per run (25) reached: …") reads in the app as
# the limit's sentence ("This run reached the limit of 25 actions per run.").
_LIMIT_MESSAGES: Final = (("Max actions per run (", "MaxActionsReached"), ("Max runtime (", "MaxRuntimeExceeded"),
                          ("Daily message limit (", "DailyLimitReached"), ("Loop stopped:", "LoopStopped"))


def for_people(message: str | None) -> str:
    """A runtime message as the app shows it: one line, without command-line advice; a safety
    limit's message as the limit's sentence."""
    text = " ".join(_CLI_ADVICE.sub("", message or "").split())
    for prefix, error_type in _LIMIT_MESSAGES:
        if text.startswith(prefix):
            return error_words(error_type, text).sentence
    return text


def _service(node_type_name: str | None, message: str | None) -> tuple[str, str]:
    if node_type_name == "action.send_sms" or (node_type_name is None and "sms" in (message or "").lower()):
        return SMS
    return EMAIL


def error_words(error_type: str | None, message: str | None = None, node_type_name: str | None = None) -> ErrorWords:
    """An error as a sentence and a suggested fix; an unknown type keeps its message."""
    if error_type in _LIMITS:
        return _limit_words(error_type, message)
    if error_type == "LoopStopped":
        return _loop_words(message)
    known = _ERRORS.get(error_type or "")
    if known is None:
        text = for_people(message) or "The step failed."
        return ErrorWords(text if text.endswith((".", "?", "!")) else text + ".",
                          "Look at the Error details, fix the cause, then Retry Step.")
    service, where = _service(node_type_name, message)
    sentence, fix = known
    return ErrorWords(sentence.format(service=service, where=where), fix.format(service=service, where=where))


def step_title(workflow: Workflow | None, node_id: str, node_type_name: str | None = None) -> str:
    """A step by its node's title, else its node type's label (never the node id)."""
    if workflow is None:
        return type_title(node_type_name)
    return workflow.step_title(node_id, node_type_name)


def record_name(row: RecordRow) -> str:
    """A record as a person says it, without its reference: "Jane Doe (patient)", "Jane Doe's
    appointment on 01/12/2026 18:34", "task “Call back” for Jane Doe", "Jane Doe's recall (Hygiene visit)"."""
    values, who = row.values, row.patient_name
    kind = row.ref.type
    if kind == "patient":
        return f"{who or 'a patient'} (patient)"
    if kind == "appointment":
        when = values.get("starts_at")
        on = f" on {local_time(when)}" if when else ""
        return f"{who}'s appointment{on}" if who else f"an appointment{on}"
    if kind == "task":
        return f"task “{values.get('title') or ''}”{' for ' + who if who else ''}"
    kind_of = f" ({values['recall_type']})" if values.get("recall_type") else ""
    return f"{who}'s recall{kind_of}" if who else f"a recall{kind_of}"


def problem_words(problem: Problem, workflow: Workflow | None) -> str:
    """A reason a draft cannot be published, its node named by title: "“Send email” — subject:
    is required" (the workflow file's own form, `str(problem)`, names the node id)."""
    where = []
    if problem.node_id is not None:
        where.append(f"“{step_title(workflow, problem.node_id)}”")
    if problem.field:
        where.append(problem.field.replace("_", " "))
    return f"{' — '.join(where)}: {problem.message}" if where else problem.message
