"""Words for a practice manager: what went wrong in a sentence, what to do about it, and steps
named by their titles (never an error type's class-like name or a node id in the app)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from app.workflow import Workflow, type_title

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
    "MaxActionsReached": ("The run stopped at the safety limit on actions per run.",
                          "Raise Max actions per run in Settings → Safety limits (or the workflow's own limit), "
                          "then Retry Step."),
    "MaxRuntimeExceeded": ("The run went on longer than the safety limit allows.",
                           "If it should run longer, raise Max runtime of a run in Settings → Safety limits."),
    "DeliveryUncertain": ("It is not known whether the message went out (Clinicflow stopped while sending).",
                          "Check your sent messages before you Retry Step: retrying may send it twice."),
    "DatabaseError": ("The database could not be read while sending; nothing was sent.", "Retry Step."),
    "InternalError": ("Something went wrong inside Clinicflow.",
                      "Retry Step; if it fails again, send the Error details to your IT contact."),
    "UnknownNode": ("This version of Clinicflow cannot run one of the workflow's steps.",
                    "Update Clinicflow on the computers that run workflows, then Retry Step."),
    "Cancelled": ("The run was cancelled.", ""),
}


# Command-line advice inside the runtime's messages ("(clinicflow integration set smtp from=...)",
# "(set security=none or ssl)"): the app gives its own advice, so these are left out.
_CLI_ADVICE: Final = re.compile(r";?\s*(?:note: )?\((?:clinicflow |set |see clinicflow )[^)]*\)|"
                                r";\s*note: no from address is set yet")


def for_people(message: str | None) -> str:
    """A runtime message as the app shows it: one line, without command-line advice."""
    return " ".join(_CLI_ADVICE.sub("", message or "").split())


def _service(node_type_name: str | None, message: str | None) -> tuple[str, str]:
    if node_type_name == "action.send_sms" or (node_type_name is None and "sms" in (message or "").lower()):
        return SMS
    return EMAIL


def error_words(error_type: str | None, message: str | None = None, node_type_name: str | None = None) -> ErrorWords:
    """An error as a sentence and a suggested fix; an unknown type keeps its message."""
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
