//! `timeline.html`: the whole history of a run on one page, like Jepsen's timeline: one lane
//! per client process (a process that replaced a timed-out one shares its lane), time running
//! down, every operation a box from invoke to completion coloured by outcome and naming the
//! node it went to, fault periods shaded across all lanes, the linearizability anomaly outlined.
//!
//! A history can hold a million operations, so the page never builds them all: the history is
//! embedded once as compact columns (JSON in a non-executing `<script type="application/json">`,
//! with `<`, `>` and `&` escaped so no value can close the element), and a small script renders
//! only the boxes inside the visible window, again on every scroll (virtual scrolling). Every
//! string from the history reaches the page through `textContent` or `title`, never markup.
//! The script writes how long the first render took (`#render-ms`, from navigation start) so a
//! test can hold it to a budget.

use super::atomic::write_atomic;
use super::data::RunData;
use super::html::{escape, truncate};
use super::story::node_of;
use faultline_checkers::{Call, Outcome};
use serde_json::{json, Value};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// Characters of an operation's label kept in the page (the full values are in history.jsonl).
const LABEL_MAX: usize = 48;

/// Lanes for processes: a process takes the lowest lane free since its first invoke, so a
/// process that replaced a timed-out one (`p + concurrency`) lands in the lane it left, and the
/// boxes of a lane never overlap. Returns the lane of each process and each lane's processes.
pub fn lanes(calls: &[Call], end_ns: u64) -> (HashMap<u64, usize>, Vec<Vec<u64>>) {
    let mut life: HashMap<u64, (u64, u64)> = HashMap::new();
    for c in calls {
        let end = c.complete_time.unwrap_or(end_ns).max(c.invoke_time);
        let e = life.entry(c.process).or_insert((c.invoke_time, end));
        e.0 = e.0.min(c.invoke_time);
        e.1 = e.1.max(end);
    }
    let mut procs: Vec<(u64, u64, u64)> = life.into_iter().map(|(p, (a, b))| (a, p, b)).collect();
    procs.sort_unstable();
    let (mut free, mut busy): (BTreeSet<usize>, BinaryHeap<Reverse<(u64, usize)>>) = (BTreeSet::new(), BinaryHeap::new());
    let (mut lane_of, mut members): (HashMap<u64, usize>, Vec<Vec<u64>>) = (HashMap::new(), Vec::new());
    for (start, p, end) in procs {
        while busy.peek().is_some_and(|Reverse((e, _))| *e < start) {
            let Reverse((_, l)) = busy.pop().unwrap_or(Reverse((0, 0)));
            free.insert(l);
        }
        let l = free.pop_first().unwrap_or_else(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[l].push(p);
        lane_of.insert(p, l);
        busy.push(Reverse((end, l)));
    }
    (lane_of, members)
}

/// `k3 read → 6`, `write 5 (fail)`: key, operation, argument, result.
fn op_label(c: &Call) -> String {
    let key = c.key.as_ref().map_or(String::new(), |k| format!("{k} "));
    let arg = if c.input.is_null() { String::new() } else { format!(" {}", c.input) };
    let out = match &c.outcome {
        Outcome::Ok(v) if &*c.f == "read" => format!(" → {v}"),
        _ => String::new(),
    };
    let fin = if c.final_read { " (final)" } else { "" };
    truncate(&format!("{key}{}{arg}{out}{fin}", c.f), LABEL_MAX)
}

fn outcome_code(c: &Call) -> u8 {
    match (&c.outcome, c.complete_time) {
        (Outcome::Ok(_), _) => 0,
        (Outcome::Fail, _) => 1,
        (Outcome::Unknown, Some(_)) => 2,
        (Outcome::Unknown, None) => 3,
    }
}

/// Interns strings (nodes) so each op carries a small number.
#[derive(Default)]
struct Strings {
    list: Vec<String>,
    ids: HashMap<String, usize>,
}

impl Strings {
    fn id(&mut self, s: &str) -> usize {
        if let Some(&i) = self.ids.get(s) {
            return i;
        }
        self.list.push(s.to_string());
        self.ids.insert(s.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }
}

/// The page's data as one JSON value: columns of the calls plus lanes, faults and marks.
pub fn data_json(data: &RunData, marks: &[u64]) -> Value {
    let end_ns = (data.end_s * 1e9) as u64;
    let (lane_of, members) = lanes(&data.calls, end_ns);
    let mut nodes = Strings::default();
    let us = |ns: u64| ns / 1000;
    let n = data.calls.len();
    let (mut lane, mut t0, mut t1, mut out, mut node, mut proc_, mut idx, mut label) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for c in &data.calls {
        lane.push(lane_of.get(&c.process).copied().unwrap_or(0));
        t0.push(us(c.invoke_time));
        t1.push(c.complete_time.map_or(-1, |t| us(t) as i64));
        out.push(outcome_code(c));
        node.push(nodes.id(&node_of(c)));
        proc_.push(c.process);
        idx.push(c.invoke_index);
        label.push(op_label(c));
    }
    let faults: Vec<Value> = data.faults.iter().map(|p| json!([p.fault, p.start_s, p.stop_s, super::story::describe_fault(p, None)])).collect();
    json!({
        "end": data.end_s.max(0.001), "lanes": members, "nodes": nodes.list, "lane": lane, "t0": t0, "t1": t1,
        "out": out, "node": node, "proc": proc_, "idx": idx, "label": label, "faults": faults, "marks": marks,
        "colors": data.faults.iter().map(|p| (p.fault.clone(), super::plots::fault_css(&p.fault))).collect::<HashMap<_, _>>(),
    })
}

/// JSON text that is safe inside a `<script>` element: no `<`, `>` or `&` (so no `</script>`
/// or `<!--` can appear), and no U+2028/U+2029.
pub fn script_safe_json(v: &Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len() + 16);
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn render(data: &RunData, title: &str, marks: &[u64]) -> String {
    let json = script_safe_json(&data_json(data, marks));
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>\
         <div id=\"bar\"><b>{}</b> · <span id=\"count\">{}</span> · <a href=\"report.html\">report</a> \
         · zoom <button id=\"zout\" title=\"zoom out (-)\">−</button><button id=\"zin\" title=\"zoom in (+)\">+</button> \
         · go to <input id=\"goto\" type=\"number\" step=\"0.1\" min=\"0\" style=\"width:6em\"> s \
         <span class=\"lg ok\">ok</span><span class=\"lg fail\">fail</span><span class=\"lg info\">info (unknown)</span><span class=\"lg never\">never completed</span><span class=\"lg mark\">anomaly</span> \
         <span class=\"muted\">first render <span id=\"render-ms\">…</span> ms</span></div>\
         <div id=\"grid\"><div id=\"corner\">time ↓</div><div id=\"head\"></div><div id=\"axis\"></div><div id=\"view\"><div id=\"space\"><div id=\"bands\"></div><div id=\"ops\"></div></div></div></div>\
         <script type=\"application/json\" id=\"data\">{json}</script><script>{SCRIPT}</script></body></html>\n",
        escape(&format!("timeline: {title}")),
        escape(title),
        escape(&super::text::plural(data.calls.len() as u64, "operation")),
    )
}

/// Writes `timeline.html` into the run directory; `marks` are invoke indexes to outline.
pub fn write_timeline(data: &RunData, title: &str, marks: &[u64]) -> anyhow::Result<()> {
    Ok(write_atomic(&data.dir.join("timeline.html"), render(data, title, marks).as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checkers::history::parse_jsonl;

    fn calls(spans: &[(u64, u64, Option<u64>)]) -> Vec<Call> {
        let mut ev: Vec<(u64, String)> = Vec::new();
        for &(p, t0, t1) in spans {
            ev.push((t0, format!("{{\"process\":{p},\"type\":\"invoke\",\"f\":\"read\",\"value\":null,\"time\":{t0}}}")));
            if let Some(t1) = t1 {
                ev.push((t1, format!("{{\"process\":{p},\"type\":\"ok\",\"f\":\"read\",\"value\":1,\"time\":{t1}}}")));
            }
        }
        ev.sort();
        parse_jsonl(&ev.into_iter().map(|e| e.1 + "\n").collect::<String>(), "t").unwrap().calls().unwrap()
    }

    #[test]
    fn a_replacing_process_takes_the_lane_it_left_and_lanes_never_overlap() {
        // p0 and p1 overlap; p10 starts after p0 ended (it replaced it); p2 never completes, so
        // p20, starting later, cannot share its lane.
        let c = calls(&[(0, 0, Some(10)), (1, 5, Some(30)), (10, 20, Some(40)), (2, 25, None), (20, 50, Some(60))]);
        let (lane, members) = lanes(&c, 100);
        assert_eq!(lane[&0], lane[&10], "{members:?}");
        assert_ne!(lane[&0], lane[&1]);
        assert_ne!(lane[&2], lane[&20]);
        assert_eq!(members.len(), 3, "{members:?}");
    }

    #[test]
    fn data_cannot_close_its_script_element() {
        let v = serde_json::json!({"label": "</script><script>alert(1)</script><!-- & \u{2028}"});
        let s = script_safe_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&') && !s.contains('\u{2028}'), "{s}");
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v, "still the same JSON");
    }
}

const STYLE: &str = r#"
html,body{margin:0;height:100%;overflow:hidden;font:12px -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#222}
#bar{height:34px;box-sizing:border-box;padding:7px 10px;border-bottom:1px solid #ccc;white-space:nowrap;overflow:hidden}
#bar button{font-size:12px;min-width:2em;margin-left:2px}
.lg{display:inline-block;margin-left:10px;padding:0 5px;border:1px solid}
.muted{color:#777;margin-left:10px}
#grid{position:absolute;top:34px;left:0;right:0;bottom:0;display:grid;grid-template-columns:76px 1fr;grid-template-rows:30px 1fr}
#corner{border-right:1px solid #ccc;border-bottom:1px solid #ccc;padding:8px 4px;color:#666;background:#fafafa}
#head{position:relative;overflow:hidden;border-bottom:1px solid #ccc;background:#fafafa}
#axis{position:relative;overflow:hidden;border-right:1px solid #ccc;background:#fafafa}
#view{position:relative;overflow:auto}
#space{position:relative}
.lh{position:absolute;top:0;height:30px;box-sizing:border-box;padding:8px 4px;font-weight:bold;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;border-left:1px solid #e4e4e4}
.tk{position:absolute;right:4px;color:#555;transform:translateY(-50%)}
.fl{position:absolute;left:2px;font-weight:bold;font-size:10px}
.band{position:absolute;left:0;right:0;pointer-events:none;opacity:.14}
.op{position:absolute;box-sizing:border-box;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;border:1px solid;border-radius:2px;font-size:11px;line-height:13px;padding:0 3px}
.ok{background:#c8e6c9;border-color:#2e7d32}.fail{background:#ffe0b2;border-color:#ef6c00}
.info{background:#ffcdd2;border-color:#c62828;border-style:dashed}.never{background:#eee;border-color:#757575;border-style:dashed}
.mark{outline:3px solid #b71c1c;z-index:2}
"#;

/// The renderer. Works on typed arrays per lane; boxes of a lane never overlap, so the boxes in
/// a time window are found by binary search on each lane's running maximum of end times.
const SCRIPT: &str = r#"
(function(){
'use strict';
var D=JSON.parse(document.getElementById('data').textContent);
var n=D.t0.length, nl=D.lanes.length, END=D.end, LW=170, PAD=3;
var view=document.getElementById('view'), space=document.getElementById('space'), layer=document.getElementById('ops');
var head=document.getElementById('head'), axis=document.getElementById('axis'), bands=document.getElementById('bands');
var t0=new Float64Array(n), e1=new Float64Array(n), OUT=['ok','fail','info','never'], marked={};
for(var i=0;i<n;i++){t0[i]=D.t0[i]/1e6;}
D.marks.forEach(function(m){marked[m]=true;});
var lanes=[];for(var l=0;l<nl;l++)lanes.push([]);
for(i=0;i<n;i++)lanes[D.lane[i]].push(i);
var idx=[],pmax=[];
for(l=0;l<nl;l++){
  var a=lanes[l];a.sort(function(x,y){return t0[x]-t0[y];});
  var ia=Int32Array.from(a),pm=new Float64Array(a.length),m=0;
  for(var k=0;k<ia.length;k++){var j=ia[k];
    e1[j]=D.t1[j]>=0?D.t1[j]/1e6:(k+1<ia.length?t0[ia[k+1]]:END);
    if(e1[j]>m)m=e1[j];pm[k]=m;}
  idx.push(ia);pmax.push(pm);
}
// Default scale: a typical (median) operation about 16 px tall and about one box per 26 px in
// each lane, whichever is larger, so labels are readable; never taller than browsers allow.
var perLane=n/Math.max(1,nl)/END,durs=[],every=Math.max(1,Math.floor(n/5000));
for(i=0;i<n;i+=every)if(D.t1[i]>=0)durs.push(D.t1[i]/1e6-t0[i]);
durs.sort(function(a,b){return a-b;});
var med=durs.length?Math.max(durs[durs.length>>1],1e-5):1;
var pps=Math.min(Math.max(26*perLane,16/med,60),3e7/END);
function step(span,max){var raw=span/max,mag=Math.pow(10,Math.floor(Math.log10(raw)));
  var c=[1,2,5,10];for(var q=0;q<4;q++)if(c[q]*mag>=raw*(1-1e-9))return c[q]*mag;return 10*mag;}
function size(){space.style.height=Math.ceil(END*pps+40)+'px';space.style.width=(nl*LW)+'px';
  bands.textContent='';
  D.faults.forEach(function(f){var b=document.createElement('div');b.className='band';
    b.style.top=(f[1]*pps)+'px';b.style.height=Math.max(2,(f[2]-f[1])*pps)+'px';b.style.background=D.colors[f[0]]||'#888';
    b.title=f[3];bands.appendChild(b);});}
function first(l,t){var pm=pmax[l],lo=0,hi=pm.length;while(lo<hi){var mid=(lo+hi)>>1;if(pm[mid]<t)lo=mid+1;else hi=mid;}return lo;}
function opDiv(j,l){
  var d=document.createElement('div'),h=Math.max(3,(e1[j]-t0[j])*pps);
  d.className='op '+OUT[D.out[j]]+(marked[D.idx[j]]?' mark':'');
  d.style.top=(t0[j]*pps)+'px';d.style.left=(l*LW+PAD)+'px';d.style.width=(LW-2*PAD)+'px';d.style.height=h+'px';
  if(h>=12)d.textContent=D.nodes[D.node[j]]+' · '+D.label[j];
  d.title='p'+D.proc[j]+' on '+D.nodes[D.node[j]]+': '+D.label[j]+'\ninvoked '+t0[j].toFixed(4)+' s, '+
    (D.t1[j]>=0?'completed '+(D.t1[j]/1e6).toFixed(4)+' s ('+((D.t1[j]/1e6-t0[j])*1e3).toFixed(1)+' ms)':'never completed')+
    ' · event '+D.idx[j]+' · '+OUT[D.out[j]];
  d.dataset.index=D.idx[j];
  return d;
}
function render(){
  var top=view.scrollTop/pps,bot=(view.scrollTop+view.clientHeight)/pps,margin=(bot-top)*0.25;
  var l0=Math.max(0,Math.floor(view.scrollLeft/LW)-1),l1=Math.min(nl,Math.ceil((view.scrollLeft+view.clientWidth)/LW)+1);
  var frag=document.createDocumentFragment(),count=0;
  for(var l=l0;l<l1;l++){var ia=idx[l];
    for(var k=first(l,top-margin);k<ia.length&&t0[ia[k]]<=bot+margin;k++){frag.appendChild(opDiv(ia[k],l));count++;}}
  layer.textContent='';layer.appendChild(frag);
  document.body.dataset.rendered=count;
  chrome(top,bot,l0,l1);
}
function chrome(top,bot,l0,l1){
  head.textContent='';
  for(var l=l0;l<l1;l++){var h=document.createElement('div');h.className='lh';h.style.left=(l*LW-view.scrollLeft)+'px';h.style.width=LW+'px';
    var ps=D.lanes[l];h.textContent=ps.slice(0,4).map(function(p){return 'p'+p;}).join(' → ')+(ps.length>4?' … ('+ps.length+')':'');
    h.title='processes in this lane: '+ps.map(function(p){return 'p'+p;}).join(', ');head.appendChild(h);}
  axis.textContent='';
  var st=step(bot-top,Math.max(2,view.clientHeight/70)),dec=st>=1?0:Math.ceil(-Math.log10(st)-1e-9);
  for(var t=Math.ceil(top/st-1e-9)*st;t<=bot;t+=st){var d=document.createElement('div');d.className='tk';
    d.style.top=(t*pps-view.scrollTop)+'px';d.textContent=t.toFixed(dec)+' s';axis.appendChild(d);}
  D.faults.forEach(function(f){if(f[2]<top||f[1]>bot)return;var d=document.createElement('div');d.className='fl';
    d.style.top=(Math.max(f[1],top)*pps-view.scrollTop+2)+'px';d.style.color=D.colors[f[0]]||'#888';d.textContent=f[0];d.title=f[3];axis.appendChild(d);});
}
var pending=false;
view.addEventListener('scroll',function(){if(!pending){pending=true;requestAnimationFrame(function(){pending=false;render();});}});
window.addEventListener('resize',render);
function goTo(t){view.scrollTop=Math.max(0,t*pps-view.clientHeight/3);render();}
function zoom(f){var mid=(view.scrollTop+view.clientHeight/2)/pps;pps=Math.min(Math.max(pps*f,1),3e7/END);size();view.scrollTop=mid*pps-view.clientHeight/2;render();}
document.getElementById('zin').onclick=function(){zoom(2);};
document.getElementById('zout').onclick=function(){zoom(0.5);};
document.getElementById('goto').onchange=function(e){goTo(parseFloat(e.target.value)||0);};
document.addEventListener('keydown',function(e){if(e.target.tagName==='INPUT')return;if(e.key==='+'||e.key==='=')zoom(2);if(e.key==='-')zoom(0.5);});
function fromHash(){var m=/t=([0-9.]+)/.exec(location.hash);if(m)goTo(parseFloat(m[1]));}
window.addEventListener('hashchange',fromHash);
size();
if(/t=/.test(location.hash))fromHash();else render();
void layer.offsetHeight;
document.getElementById('render-ms').textContent=performance.now().toFixed(1);
})();
"#;
