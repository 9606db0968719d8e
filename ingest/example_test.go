package ingest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/capturectl/capturectl/correlate"
	"github.com/capturectl/capturectl/ingest"
)

// The article's console transcript, as an operator pasted it: four
// pktcap-uw runs, one after the other, each a point named by its banner.
// They never captured at the same time, so no frame can be judged.
func Example() {
	set, err := ingest.Open([]ingest.Input{
		{Name: "../testdata/transcripts/pktcap-uw/pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt"},
	}, ingest.Options{Day: time.Date(2020, 5, 4, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range set.Points() {
		fmt.Printf("%s: %s, live %s to %s, drops reported: %v\n", p.Name, p.Stage,
			p.Start.Format("15:04:05.000"), p.Stop.Format("15:04:05.000"), p.DropsKnown)
	}
	res, err := set.Correlate(context.Background(), correlate.Config{
		Port: correlate.Port{Policy: "srcport", TeamUplink: "vmnic2"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Totals[correlate.Inconclusive], "inconclusive:", res.Flows[0].Examples[0].Reason)
	// Output:
	// pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt#1 vmnic2/rx: uplink-rx, live 16:13:16.466 to 16:13:18.524, drops reported: true
	// pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt#2 vmnic3/rx: uplink-rx, live 16:13:26.706 to 16:13:28.764, drops reported: true
	// pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt#3 50331657/PortOutput: port-output, live 16:12:40.626 to 16:12:41.660, drops reported: true
	// pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt#4 50331657/VnicRx: vnic-rx, live 16:12:53.938 to 16:12:55.996, drops reported: true
	// 11 inconclusive: pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt#1 vmnic2/rx was not capturing yet (it started 35.834905s later)
}

// Feed is Correlate with a correlator of one's own, made from the set's
// Config: here, one that knows the port's team uplink changed during the
// captures (a vMotion, say).
func ExampleSet_Feed() {
	set, err := ingest.Open([]ingest.Input{
		{Name: "../testdata/transcripts/pktcap-uw/pktcap-uw-console-6.7-uplink-portoutput-vnicrx.txt"},
	}, ingest.Options{Day: time.Date(2020, 5, 4, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		log.Fatal(err)
	}
	c, err := correlate.New(set.Config(correlate.Config{Port: correlate.Port{Policy: "srcport", TeamUplink: "vmnic2"}}))
	if err != nil {
		log.Fatal(err)
	}
	c.SetTeamUplink(time.Date(2020, 5, 4, 16, 13, 30, 0, time.UTC), "vmnic3", "vmotion")
	if err := set.Feed(context.Background(), c); err != nil {
		log.Fatal(err)
	}
	for _, ch := range c.Close().TeamUplinks {
		fmt.Println(ch.Uplink, ch.Source)
	}
	// Output:
	// vmnic2 discovery
	// vmnic3 vmotion
}
