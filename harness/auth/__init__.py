"""HTTP authentication and WS-Man message encryption, in both roles (MS-WSMV 2.2.9).

* :mod:`harness.auth.policy`     what a listener accepts (the WinRM service Group Policy knobs)
* :mod:`harness.auth.users`      the acceptor's local user database (and its NTLM credential file)
* :mod:`harness.auth.headers`    ``Authorization`` / ``WWW-Authenticate`` parsing, HTTP Basic
* :mod:`harness.auth.ntlm_cbt`   reading channel bindings out of an NTLM AUTHENTICATE message
* :mod:`harness.auth.acceptor`   server role: Basic, NTLM and Negotiate (SPNEGO) per TCP connection
* :mod:`harness.auth.initiator`  client role: the same schemes, for the HTTP transport
* :mod:`harness.auth.encryption` sans-IO ``multipart/encrypted`` wrap/unwrap (MS-WSMV 2.2.9.1.1)
* :mod:`harness.auth.tls`        certificates, TLS contexts and ``tls-server-end-point`` bindings (RFC 5929)
"""

from __future__ import annotations

from harness.auth.errors import AuthError, EncryptionError

__all__ = ["AuthError", "EncryptionError"]
