"""DCE/RPC and DCOM over TCP: sans-IO PDU codec (:mod:`.pdu`), NDR marshalling (:mod:`.ndr`),
DCOM structures (:mod:`.orpc`) and the asyncio server runtime (:mod:`.server`).

MS-RPCE (DCE/RPC extensions), C706 (DCE 1.1 RPC), MS-DCOM (activation, OXID resolution, IRemUnknown).
"""
