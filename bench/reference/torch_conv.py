#!/usr/bin/python3
"""PyTorch twin of `dotnet run -c Release --project bench -- conv`: median ms of forward,
backward-data and backward-filter for every convolution shape of PreActResNet18 (batch 100,
32x32) and of the agent (batch 100 for the PPO update, batch 1 for Act), same rows, same order.

Usage: /usr/bin/python3 bench/reference/torch_conv.py WIDTH [REPS]
"""
import sys, time, statistics, torch
torch.set_num_threads(2)
w=int(sys.argv[1]); reps=int(sys.argv[2]) if len(sys.argv)>2 else 5
def shapes(w):
    s=[("conv1",100,3,32,w,3,1,1)]
    c,h=w,32
    for i,o in enumerate([w,2*w,4*w,8*w]):
        st=1 if i==0 else 2
        s.append((f"l{i+1}.c1",100,c,h,o,3,st,1))
        ho=h//st
        s.append((f"l{i+1}.x3",100,o,ho,o,3,1,1))
        if st!=1 or c!=o: s.append((f"l{i+1}.sc",100,c,h,o,1,st,0))
        c,h=o,ho
    s+= [("ag.1",100,100,16,200,3,1,0),("ag.2",100,200,14,300,3,1,0),("ag.3",100,300,12,400,3,1,0),("act.1",1,100,16,200,3,1,0)]
    return s
def med(f):
    f(); ts=[]
    for _ in range(reps):
        t=time.perf_counter(); f(); ts.append((time.perf_counter()-t)*1e3)
    return statistics.median(ts)
for name,n,c,h,o,k,st,p in shapes(w):
    x=torch.randn(n,c,h,h); wt=torch.randn(o,c,k,k)
    y=torch.nn.functional.conv2d(x,wt,stride=st,padding=p)
    dy=torch.randn_like(y)
    fwd=med(lambda: torch.nn.functional.conv2d(x,wt,stride=st,padding=p))
    bd=med(lambda: torch.ops.aten.convolution_backward(dy,x,wt,None,[st,st],[p,p],[1,1],False,[0,0],1,[True,False,False]))
    bf=med(lambda: torch.ops.aten.convolution_backward(dy,x,wt,None,[st,st],[p,p],[1,1],False,[0,0],1,[False,True,False]))
    print(f"{name:8s} {fwd:8.2f} {bd:8.2f} {bf:8.2f}")
