"""Session 44 (CPU): Python host time of a replayed unmasked decode call (`attention(q, k, v)`,
one token, 16 / 8 heads) with the recorded plan stubbed out: what the checks and the plan key
cost per layer before the launch. Plans are CUDA-only, so the CUDA checks are stubbed too.
Before the memoised integer classes: 10.55-10.75 us; after: 7.93 us (this CPU machine)."""
import time, torch, statistics, maskattn as ma
from maskattn.kernels import unmasked_decode as ud, plans
plans.replayable = lambda q: True
torch._C._cuda_getCurrentRawStream = lambda i: 0
B,HQ,HKV,D,L=1,16,8,128,256
q=torch.randn(B,HQ,1,D,dtype=torch.bfloat16); k=torch.randn(B,HKV,L,D,dtype=torch.bfloat16); v=torch.randn_like(k)
SENT = (1, 2)
def fake(q,k,v,fresh_lse=True,ints=None, **kw):
    return SENT
ints=ud._ints(k,v,None)
ud._PLANS[ud._plan_key(q,k,v,ud.default_scale(D),None,ints)]=fake
assert ma.attention(q,k,v,return_lse=True) is SENT
def run(n=20000):
    t=time.perf_counter()
    for _ in range(n): ma.attention(q,k,v,return_lse=True)
    return (time.perf_counter()-t)/n*1e6
run(2000); print("python host us per replayed call (plan stubbed): %.2f" % statistics.median(run() for _ in range(7)))
from maskattn.kernels import op
import timeit
sc = ud.default_scale(D)
for name, stmt in [("_replayable_call", lambda: op._replayable_call(q,k,v,None,None,None)),
                   ("_traced", lambda: op._traced(q,k,v)),
                   ("_ints", lambda: ud._ints(k,v,None)),
                   ("_classes", lambda: ud._classes(ints, 2)),
                   ("layouts", lambda: plans.layouts(q)),
                   ("_plan_key", lambda: ud._plan_key(q,k,v,sc,None,ints)),
                   ("replay_recorded", lambda: ud.replay_recorded(q,k,v,None,None)),
                   ("replay_unmasked", lambda: op.replay_unmasked(q,k,v,None,None,None,None,True)),
                   ("is_grad_enabled", lambda: torch.is_grad_enabled()),
                   ("q.device==k.device", lambda: q.device == k.device == v.device)]:
    n=50000
    print(f"{name}: {min(timeit.repeat(stmt, number=n, repeat=5))/n*1e6:.2f} us")
