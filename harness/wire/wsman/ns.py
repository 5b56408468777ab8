"""Namespace URIs, action URIs and well-known URIs of WS-Management (MS-WSMV dialect).

Sources: DMTF DSP0226 1.x (WS-Management), its normative WS-Transfer / WS-Enumeration /
WS-Eventing 2004 references, DSP0227 (CIM binding), DSP0230 (WS-CIM), DSP0217 / DSP0226 11
(Identify), MS-WSMV 2.2.1 (namespaces), MS-WSMV 3.1.4.x (operations) and MS-WSMV 2.2.4.x / 3.1.4.14
(WinRS shell URIs).
"""

from __future__ import annotations

from typing import Final

# --- XML namespaces (MS-WSMV 2.2.1) ------------------------------------------------------------
NS_SOAP: Final = "http://www.w3.org/2003/05/soap-envelope"
NS_SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"  # only to detect a SOAP 1.1 envelope
NS_ADDRESSING: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_WSMAN: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_WSMAN_MS: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_ENUMERATION: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
NS_TRANSFER: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_EVENTING: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing"
NS_WSMID: Final = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
NS_WSMANFAULT: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
NS_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
NS_XS: Final = "http://www.w3.org/2001/XMLSchema"
NS_XML: Final = "http://www.w3.org/XML/1998/namespace"
NS_CIM: Final = "http://schemas.dmtf.org/wbem/wscim/1/common"
NS_CIMBINDING: Final = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd"
NS_SHELL: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"

#: Prefixes used when this codec writes a message. They are the ones Windows itself writes
#: (observed Windows behaviour: s, a, x, w, p, n, e on the Envelope element).
NSMAP: Final[dict[str, str]] = {
    "s": NS_SOAP,
    "a": NS_ADDRESSING,
    "x": NS_TRANSFER,
    "n": NS_ENUMERATION,
    "e": NS_EVENTING,
    "w": NS_WSMAN,
    "p": NS_WSMAN_MS,
}

#: Canonical prefix for every namespace a fault subcode QName may use (see faults.py).
CANONICAL_PREFIX: Final[dict[str, str]] = {uri: prefix for prefix, uri in NSMAP.items()}

# --- resource URIs (MS-WSMV 2.2.4.x / 3.1.4.x; DSP0227 5) ---------------------------------------
RESOURCE_WMI_PREFIX: Final = "http://schemas.microsoft.com/wbem/wsman/1/wmi/"  # + "root/cimv2/Win32_Service"
RESOURCE_CIM_PREFIX: Final = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"  # + "CIM_ManagedElement"
RESOURCE_WMI_ALL: Final = "http://schemas.microsoft.com/wbem/wsman/1/wmi/*"
RESOURCE_CIM_ALL: Final = "http://schemas.dmtf.org/wbem/wscim/1/*"
RESOURCE_CONFIG: Final = "http://schemas.microsoft.com/wbem/wsman/1/config"
RESOURCE_SHELL_CMD: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
RESOURCE_POWERSHELL: Final = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"
CIM_NAMESPACE_SELECTOR: Final = "__cimnamespace"  # DSP0227 8.1 / MS-WSMV 3.1.4.1.x
#: Robust connections (MS-WSMV 3.1.4.18, 3.1.6.6): the resource URI of Acknowledge / AcknowledgeRequest.
RESOURCE_ROBUST_CONNECTION: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman/RobustConnection"
#: Full duplex (MS-WSMV 3.2.4.2.1.1 - 3.2.4.2.1.3): the resource URI of End, KeepAlive and Cancel.
RESOURCE_FULL_DUPLEX: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman/FullDuplex"

# --- WS-Addressing (DSP0226 5.4) ---------------------------------------------------------------
ANONYMOUS: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"

# --- enumeration filter dialects and modes (DSP0226 8.7, 8.8; DSP0227 8.2; MS-WSMV 3.1.4.8) -----
FILTER_WQL: Final = "http://schemas.microsoft.com/wbem/wsman/1/WQL"
FILTER_SELECTOR: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter"
FILTER_ASSOCIATION: Final = "http://schemas.dmtf.org/wbem/wsman/1/cimbinding/associationFilter"
FILTER_CQL: Final = "http://schemas.dmtf.org/wbem/cql/1/dsp0202.pdf"
#: Content-Type of a WS-Man message on HTTP (MS-WSMV 2.1: SOAP 1.2 over HTTP, UTF-8; the exact
#: spelling Windows sends).
SOAP_CONTENT_TYPE: Final = "application/soap+xml;charset=UTF-8"
ENUM_MODE_EPR: Final = "EnumerateEPR"
ENUM_MODE_OBJECT_AND_EPR: Final = "EnumerateObjectAndEPR"

# --- Identify (DSP0226 11; MS-WSMV 3.1.4.16) ---------------------------------------------------
WSMAN_PROTOCOL_VERSION: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
SECPROFILE_PREFIX: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/"

# --- fault detail URIs (DSP0226 14.6) -----------------------------------------------------------
FAULT_DETAIL_PREFIX: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"


class Action:
    """Action URIs (DSP0226 / MS-WSMV 3.1.4.x)."""

    # WS-Transfer (DSP0226 7; MS-WSMV 3.1.4.1 - 3.1.4.7)
    GET: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
    GET_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse"
    PUT: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put"
    PUT_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/PutResponse"
    CREATE: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
    CREATE_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse"
    DELETE: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
    DELETE_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse"
    # WS-Enumeration (DSP0226 8; MS-WSMV 3.1.4.8 - 3.1.4.10)
    ENUMERATE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
    ENUMERATE_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse"
    PULL: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
    PULL_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse"
    RELEASE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"
    RELEASE_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/ReleaseResponse"
    RENEW: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Renew"
    RENEW_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/RenewResponse"
    GET_STATUS: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/GetStatus"
    GET_STATUS_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/GetStatusResponse"
    ENUMERATION_END: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerationEnd"
    # WS-Eventing (DSP0226 10; codec in eventing.py): Subscribe is MS-WSMV 3.1.4.6, Unsubscribe MS-WSMV
    # 3.1.4.7; Renew (DSP0226 10.5) and GetStatus (DSP0226 10.3) have no section of their own in the
    # MS-WSMV 3.1.4 operation table; events, heartbeats and publisher-initiated subscriptions are
    # MS-WSMV 3.1.4.1.30 (SubscriptionType: MS-WSMV 2.2.4.41).
    SUBSCRIBE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/Subscribe"
    SUBSCRIBE_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/SubscribeResponse"
    EVENTING_RENEW: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/Renew"
    EVENTING_RENEW_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/RenewResponse"
    EVENTING_GET_STATUS: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/GetStatus"
    EVENTING_GET_STATUS_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/GetStatusResponse"
    UNSUBSCRIBE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/Unsubscribe"
    UNSUBSCRIBE_RESPONSE: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/UnsubscribeResponse"
    SUBSCRIPTION_END: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/SubscriptionEnd"
    EVENTS: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Events"
    EVENT: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Event"
    HEARTBEAT: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Heartbeat"
    DROPPED_EVENTS: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/DroppedEvents"
    ACK: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/Ack"
    # Robust connections and full duplex (MS-WSMV 3.1.4.1.39, 3.1.4.18, 3.1.4.19, 3.2.4.2.1; codec
    # in robust.py). The KeepAlive action is spelled "KeepAlive" in the message table of 2.2.2.1
    # and "Keepalive" in the message of 3.2.4.2.1.2 and the timer of 3.2.5.2; both are accepted,
    # the latter is written.
    ACKNOWLEDGE: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman/Acknowledge"
    ACKNOWLEDGE_REQUEST: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman/AcknowledgeRequest"
    KEEPALIVE: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman/Keepalive"
    KEEPALIVE_TABLE: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman/KeepAlive"
    END: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman/End"
    CANCEL: Final = "http://schemas.microsoft.com/wbem/wsman/1/wsman/Cancel"
    # Identify has no action header (DSP0226 11; MS-WSMV 3.1.4.16); these name the body elements
    IDENTIFY: Final = "{" + NS_WSMID + "}Identify"
    IDENTIFY_RESPONSE: Final = "{" + NS_WSMID + "}IdentifyResponse"
    # faults (DSP0226 14.5)
    FAULT_ADDRESSING: Final = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"
    FAULT_WSMAN: Final = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
    FAULT_ENUMERATION: Final = "http://schemas.xmlsoap.org/ws/2004/09/enumeration/fault"
    FAULT_TRANSFER: Final = "http://schemas.xmlsoap.org/ws/2004/09/transfer/fault"
    FAULT_EVENTING: Final = "http://schemas.xmlsoap.org/ws/2004/08/eventing/fault"


def custom_action(resource_uri: str, method: str) -> str:
    """Action URI of a custom (CIM method) action: resource URI + "/" + method (MS-WSMV 3.1.4.15,
    DSP0227 9)."""
    return resource_uri.rstrip("/") + "/" + method


class ShellAction:
    """WinRS shell action URIs (MS-WSMV 3.1.4.11 Command - 3.1.4.17 Connect). Constants only here."""

    COMMAND: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command"
    COMMAND_RESPONSE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse"
    SEND: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
    SEND_RESPONSE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse"
    RECEIVE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive"
    RECEIVE_RESPONSE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse"
    SIGNAL: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
    SIGNAL_RESPONSE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse"
    # MS-WSMV 3.1.4.15 - 3.1.4.17: the action URIs are in the windows/shell namespace.
    DISCONNECT: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Disconnect"
    DISCONNECT_RESPONSE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/DisconnectResponse"
    RECONNECT: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Reconnect"
    RECONNECT_RESPONSE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReconnectResponse"
    CONNECT: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Connect"
    CONNECT_RESPONSE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ConnectResponse"
    SIGNAL_TERMINATE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
    SIGNAL_CTRL_C: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
    SIGNAL_CTRL_BREAK: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break"
    SIGNAL_PS_CTRL_C: Final = "powershell/signal/crtl_c"
    COMMAND_STATE_DONE: Final = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
    COMMAND_STATE_RUNNING: Final = (
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
    )
    COMMAND_STATE_PENDING: Final = (
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Pending"
    )


def qn(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` used by lxml."""
    return "{" + ns + "}" + local
