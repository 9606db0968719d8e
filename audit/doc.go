// Package audit is capturectl's inventory-wide check for reverse-teaming
// blind spots and the teaming mistakes next to them, from one read of a
// vCenter (or ESXi) inventory: Run returns a Result of checked objects and
// Findings, each with a stable check ID, a severity, the object's path, what
// is wrong, why it matters and what to change.
//
// It does not render (package report writes the text, JSON, JUnit and
// Prometheus outputs of a Result), connect or log in (it takes a logged-in
// *vim25.Client, e.g. esxi.Client.Vim), capture or trace (whether a
// monitor VM really misses frames is what `capturectl audit --verify`
// traces), or change the inventory. The decoding of switches and port
// groups is package esxi's, shared with discovery.
//
// Calls after login: CreateContainerView of the root folder (recursive,
// the types below), one RetrievePropertiesEx through the view (paged by
// the server with ContinueRetrievePropertiesEx on a large inventory), and
// DestroyView. Nothing is read per object, and no esxcli or SSH runs, so
// team uplinks are not known: findings are about configuration.
//
// Terms used by the checks, per port group (standard) or distributed port
// group, from its effective policy:
//
//   - active, standby: the failover order; on a distributed switch an
//     entry may be a LAG (LACP), which counts as one uplink;
//   - uplinks in use: explicit failover uses the first active uplink only;
//     IP hash and the load-balancing policies (originating port ID, source
//     MAC hash, physical NIC load) use every active uplink; with no active
//     uplink the first standby uplink is taken as the one in use (an
//     assumption: the vSphere Client refuses that set-up, the API does not);
//   - blind spot: a load-balancing policy without a LAG (originating port
//     ID, source MAC hash, physical NIC load) with two or more active
//     uplinks. Each port then has one team uplink and reverse teaming drops
//     inbound frames that arrive on the others, promiscuous or not.
//     Explicit failover is not a blind spot here: every port shares the
//     first active uplink, where the physical switch sends the frames of
//     the host's VMs (esxi.Target.BlindSpot, about captures, still counts
//     it, because flooded copies on the other uplinks are dropped after
//     PortOutput).
//
// The checks (IDs are stable; see Checks):
//
//   - RT001 (high), per promiscuous port group with the blind spot: a
//     monitor, IDS or L2VPN VM on it sees local→local and local→external
//     frames, external→local frames only when they arrive on its own team
//     uplink, and external→external frames never. Reported whether or not
//     VMs are connected (any VM connected later is affected); the VMs
//     connected now are named.
//   - RT002 (high), per switch: a port group on IP hash (which needs a
//     static EtherChannel or LAG on the physical switch) shares active
//     uplinks with port groups on other policies. The physical switch
//     hashes frames over the LAG members, so the other port groups' VMs
//     lose the frames that reach a member other than their team uplink.
//   - RT003 (medium), per port group on IP hash with standby uplinks, or
//     with switch uplinks left unused: vSphere requires every uplink of
//     the team active (the EtherChannel has as many ports as the team).
//     On a distributed switch whose active uplink is a LAG, standalone
//     uplinks left unused are the normal LACP set-up and not reported.
//   - RT004 (medium), per promiscuous port group without the blind spot
//     that uses one uplink U (a single active uplink, explicit failover,
//     or a LAG), when another port group of the same switch with an
//     overlapping VLAN uses uplinks other than U and has VMs on a host
//     where the promiscuous port group has VMs too: frames from outside
//     to those VMs arrive on the other uplinks and the monitor never sees
//     them. vmkernel ports are not counted as VMs.
//   - RT005 (medium), distributed port group whose active uplinks mix a
//     LAG with standalone uplinks (not supported by vSphere: the LAG must
//     be the only active uplink).
//
// Not read: per-port (DVPort) overrides of a distributed port group's
// policy, NSX (opaque) networks, the physical switch (whether the
// EtherChannel of an IP hash team exists) and link state.
package audit
