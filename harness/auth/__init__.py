"""HTTP authentication and WS-Man message encryption, in both roles (MS-WSMV 2.2.9).

* :mod:`harness.auth.policy`     what a listener accepts (the WinRM service Group Policy knobs)
* :mod:`harness.auth.users`      the acceptor's local user database (and its NTLM credential file)
* :mod:`harness.auth.headers`    ``Authorization`` / ``WWW-Authenticate`` parsing, HTTP Basic
* :mod:`harness.auth.ntlm_cbt`   reading channel bindings out of an NTLM AUTHENTICATE message
* :mod:`harness.auth.acceptor`   server role: Basic, NTLM and Negotiate (SPNEGO) per TCP connection
* :mod:`harness.auth.initiator`  client role: the same schemes, for the HTTP transport
* :mod:`harness.auth.encryption` sans-IO ``multipart/encrypted`` wrap/unwrap (MS-WSMV 2.2.9.1.1)
* :mod:`harness.auth.tls`        certificates, TLS contexts and ``tls-server-end-point`` bindings (RFC 5929)
* :mod:`harness.auth.kerberos`   Kerberos (RFC 4120, RFC 4121) under ``Negotiate`` and the ``Kerberos`` scheme
* :mod:`harness.auth.credssp`    CredSSP (MS-CSSP) in both roles, its sealing of WinRM messages

Digest: MS-WMOD names Digest among the authentication services, and the WinRM *client* may use it
(MS-WSMV 2.2.4.4 ClientAuthType has ``Digest``; wsman:secprofile/http(s)/digest, DSP0226 Annex C.3.2
and C.3.4), but the WinRM *service* never accepts it: ServiceAuthType (MS-WSMV 2.2.4.34) has no Digest
switch, and the WSManAuthenticationFlags documentation says of WSMAN_FLAG_AUTH_DIGEST that client
scripts can specify Digest "but the service cannot". A Windows listener answers
``Authorization: Digest ...`` with 401 and its usual ``WWW-Authenticate`` list; so does the mock
(the acceptor treats Digest like any scheme it does not offer).
"""

from __future__ import annotations

from harness.auth.errors import AuthError, EncryptionError

__all__ = ["AuthError", "EncryptionError"]
