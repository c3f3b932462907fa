#!/usr/bin/env python3
"""A real SMTP server for Dropgate's mail tests: aiosmtpd on 127.0.0.1.

Usage: smtp_sink.py DIR PORT. Prints "ready" once it accepts connections.

Every accepted message is written to DIR/NNNN.eml (the bytes as received) after
DIR/NNNN.json (the envelope, the decoded headers and the decoded text and HTML parts). Files in DIR steer the next answers:
  fail-next  holding a number N: answer "451" to the next N messages (then accept)
  reject     present: answer "550" to every message
  hang       present: never answer a message (for timeouts and interrupted sends)
"""
import asyncio
import email
import email.policy
import json
import os
import sys
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0

    def path(self, name):
        return os.path.join(self.directory, name)

    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(self.path("hang")):
            await asyncio.sleep(3600)
        if os.path.exists(self.path("reject")):
            return "550 5.1.1 mailbox unavailable"
        fail = self.path("fail-next")
        if os.path.exists(fail):
            with open(fail) as f:
                left = int(f.read().strip() or 0)
            if left > 0:
                with open(fail, "w") as f:
                    f.write(str(left - 1))
                return "451 4.3.0 try again later"
        self.count += 1
        name = "%04d" % self.count
        message = email.message_from_bytes(
            envelope.original_content, policy=email.policy.default
        )
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        with open(self.path(name + ".json"), "w") as f:
            json.dump(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "headers": [[k, str(v)] for k, v in message.items()],
                    "text": text.get_content() if text else "",
                    "html": html.get_content() if html else "",
                },
                f,
            )
        with open(self.path(name + ".tmp"), "wb") as f:
            f.write(envelope.original_content)
        os.rename(self.path(name + ".tmp"), self.path(name + ".eml"))
        return "250 2.0.0 queued as " + name


def main():
    directory, port = sys.argv[1], int(sys.argv[2])
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
