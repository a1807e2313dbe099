import socket, time
ss=[]
for i in range(40):
    try: ss.append(socket.create_connection(("127.0.0.1", 8799), timeout=1))
    except Exception as e: print(i, e)
time.sleep(2.5)
for s in ss[:10]: s.close()
time.sleep(1.5)
s = socket.create_connection(("127.0.0.1", 8799)); s.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); print(s.recv(100)[:15])
