"""sendmmsg and recvmmsg on one connection (through ctypes: the Python
socket module has neither). server PORT receives three 5-byte messages in
batches; client HOST PORT sends them in one sendmmsg call."""
import socket, sys
# sendmmsg/recvmmsg are not in Python's socket module; use ctypes.
import ctypes, ctypes.util
libc = ctypes.CDLL(None, use_errno=True)
class iovec(ctypes.Structure): _fields_=[("base",ctypes.c_void_p),("len",ctypes.c_size_t)]
class msghdr(ctypes.Structure): _fields_=[("name",ctypes.c_void_p),("namelen",ctypes.c_uint),("iov",ctypes.POINTER(iovec)),("iovlen",ctypes.c_size_t),("control",ctypes.c_void_p),("controllen",ctypes.c_size_t),("flags",ctypes.c_int)]
class mmsghdr(ctypes.Structure): _fields_=[("hdr",msghdr),("len",ctypes.c_uint)]
def batch(bufs):
    arr=(mmsghdr*len(bufs))(); keep=[]
    for i,b in enumerate(bufs):
        v=(iovec*1)(iovec(ctypes.cast(b,ctypes.c_void_p),len(b))); keep.append(v)
        arr[i].hdr.iov=v; arr[i].hdr.iovlen=1
    return arr,keep
mode=sys.argv[1]
if mode=="server":
    srv=socket.create_server(("0.0.0.0",int(sys.argv[2]))); c,_=srv.accept()
    bufs=[ctypes.create_string_buffer(5) for _ in range(3)]; arr,k=batch(bufs)
    got=b""
    while len(got)<15:
        n=libc.recvmmsg(c.fileno(),arr,3,0x10000,None)  # MSG_WAITFORONE
        assert n>0, ctypes.get_errno()
        for i in range(n): got+=bufs[i].raw[:arr[i].len]
    assert got==b"aaaaabbbbbccccc", got; print("recvmmsg ok")
else:
    s=socket.create_connection((sys.argv[2],int(sys.argv[3])))
    bufs=[ctypes.create_string_buffer(x,5) for x in (b"aaaaa",b"bbbbb",b"ccccc")]; arr,k=batch(bufs)
    n=libc.sendmmsg(s.fileno(),arr,3,0); assert n==3,(n,ctypes.get_errno()); print("sendmmsg ok"); s.close()
