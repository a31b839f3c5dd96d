"""The optional SMTP channel: our text, with the platform's invoice PDF attached, from the user's own mail server.

Used where a platform's mailing cannot carry a step (Exact refusing to re-send a processed invoice). The mail
leaves from the user's address through their server (`[mail]` in the config; the password comes from the
environment variable the config names), and the reminder is then recorded on the platform like any other.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from providers.errors import DunningError


class MailConfig(BaseModel):
    """The `[mail]` table: the user's own outgoing mail server."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    """Upgrade the connection with STARTTLS before logging in (port 587); false only for a server on this machine."""
    username: str | None = None
    sender: str = Field(alias="from", min_length=3)
    """The From address debtors see and reply to."""
    password_env: str | None = None
    """The environment variable holding the password (never the password itself)."""
    ca_file: Path | None = None
    """Trust this CA bundle for the server's certificate (a private mail server); default: the system's."""
    timeout: float = Field(default=30.0, gt=0)


class MailRefused(DunningError):
    """The mail server would not take the message (a refused recipient, a login failure)."""


@dataclass(frozen=True)
class OutgoingMail:
    to: tuple[str, ...]
    subject: str
    body: str
    message_id: str
    """Derived from the outbox key, so a mail the server logs can be matched to its row."""
    attachment: bytes | None = None
    attachment_name: str = "invoice.pdf"


class SmtpMailer:
    """Sends one message per call through the configured server."""

    def __init__(self, config: MailConfig, password: SecretStr | None) -> None:
        self.config = config
        self._password = password

    def send(self, mail: OutgoingMail) -> tuple[str, ...]:
        """Send; returns the recipients the server accepted. Raises `MailRefused` when it accepted none."""
        message = EmailMessage()
        message["From"] = self.config.sender
        message["To"] = ", ".join(mail.to)
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = mail.message_id
        message.set_content(mail.body)
        if mail.attachment is not None:
            message.add_attachment(mail.attachment, maintype="application", subtype="pdf",
                                   filename=mail.attachment_name)
        try:
            with smtplib.SMTP(self.config.host, self.config.port, timeout=self.config.timeout) as server:
                server.ehlo()
                if self.config.starttls:
                    context = ssl.create_default_context(cafile=str(self.config.ca_file) if self.config.ca_file else None)
                    server.starttls(context=context)
                    server.ehlo()
                if self.config.username:
                    password = self._password.get_secret_value() if self._password else ""
                    server.login(self.config.username, password)
                refused = server.send_message(message, to_addrs=list(mail.to))
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailRefused(f"the mail server refused every recipient ({_codes(exc.recipients)})") from None
        except smtplib.SMTPAuthenticationError:
            raise MailRefused(f"the mail server {self.config.host} refused the login of {self.config.username}; "
                              f"check [mail] username and the password in ${self.config.password_env}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailRefused(f"the mail server {self.config.host}:{self.config.port} did not take the mail: "
                              f"{type(exc).__name__}: {exc}") from None
        return tuple(address for address in mail.to if address not in refused)


def _codes(recipients: dict[str, tuple[int, bytes]]) -> str:
    return ", ".join(f"{code} {reply.decode(errors='replace')}" for code, reply in recipients.values())


def mailer(config: MailConfig | None, environ: Mapping[str, str] | None = None) -> SmtpMailer | None:
    """The mailer for a `[mail]` table (None without one), the password read from its environment variable now."""
    if config is None:
        return None
    env = os.environ if environ is None else environ
    password = None
    if config.password_env:
        value = env.get(config.password_env)
        if not value:
            raise DunningError(f"mail.password_env: the environment variable {config.password_env} is not set "
                               "(export the mail server password there)")
        password = SecretStr(value)
    return SmtpMailer(config, password)
